package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/internal/accesslog"
	"gantry/internal/config"
)

// seen is a request as the backend received it, complete with its body.
type seen struct{ method, target, body string }

// recorder is an upstream that records every request it read in full.
type recorder struct {
	mu   sync.Mutex
	reqs []seen
}

func (u *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "incomplete body", http.StatusBadRequest)
		return
	}
	if r.RequestURI == "/closing" {
		w.Header().Set("X-Closing", "1")
		return
	}
	u.mu.Lock()
	u.reqs = append(u.reqs, seen{r.Method, r.RequestURI, string(b)})
	u.mu.Unlock()
	io.WriteString(w, "ok")
}

// take returns what the upstream received since the last call and forgets it.
func (u *recorder) take() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.reqs
	u.reqs = nil
	return r
}

// framingServer is a gantry with a static route (/static/, which the fast path
// answers) and a proxy route (/, to a recording upstream), with its observed
// records and its access log.
type framingServer struct {
	srv     *Server
	addr    string
	logFile string
	up      *recorder
	mu      sync.Mutex
	recs    []accesslog.Record
}

func (f *framingServer) records() []accesslog.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	var r []accesslog.Record
	for _, rec := range f.recs {
		if rec.URI != "/closing" {
			r = append(r, rec)
		}
	}
	f.recs = nil
	return r
}

// startFraming starts a recording upstream and a gantry in front of it, with the
// fast path on or off.
func startFraming(t testing.TB, fastPath bool) *framingServer {
	t.Helper()
	up := &recorder{}
	hs := &http.Server{Handler: up, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "static", "a.txt"), "static a")
	f := &framingServer{up: up, logFile: filepath.Join(dir, "access.log")}
	file := filepath.Join(dir, "gantry.toml")
	mustWrite(t, file, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=%q\nfast_path=%v\nmax_body=\"1MB\"\n[admin]\nlisten=\"off\"\n"+
		"[[site]]\nroot=%q\n  [[site.route]]\n  path=\"/static/\"\n  static=%q\n  [[site.route]]\n  path=\"/\"\n  proxy=\"http://%s\"\n",
		f.logFile, fastPath, dir, filepath.Join(dir, "static"), ln.Addr()))
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Observe(func(rec *accesslog.Record) {
		f.mu.Lock()
		r := *rec
		r.Request = nil
		f.recs = append(f.recs, r)
		f.mu.Unlock()
	})
	srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	f.srv, f.addr = srv, srv.Addrs()[0].String()
	// Warm the static cache, so that the fast path answers /static/a.txt.
	converse(t, f.addr, "GET /static/a.txt HTTP/1.1\r\nHost: a\r\n\r\n", false)
	up.take()
	f.records()
	return f
}

func mustWrite(t testing.TB, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// answer is one response as the client read it.
type answer struct {
	status int
	body   string
	close  bool
}

// closingRequest ends a conversation that did not end the connection by itself:
// the server closes after answering it, so the client needs no timeout to know it
// has every answer. (A half-close would do too, but net/http takes it for the
// client leaving and cancels a proxied request in flight.)
const closingRequest = "GET /closing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"

// converse sends raw on a new connection and reads responses (with
// http.ReadResponse, as a client would) until the server closes. With half, the
// client half-closes after raw; without, it sends closingRequest, whose answer,
// if it came, is not returned.
func converse(t testing.TB, addr, raw string, half bool) []answer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		if half {
			io.WriteString(c, raw)
			c.(*net.TCPConn).CloseWrite()
		} else {
			io.WriteString(c, raw+closingRequest)
		}
	}()
	br := bufio.NewReader(c)
	var out []answer
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("X-Closing") == "" {
			out = append(out, answer{resp.StatusCode, string(b), resp.Close})
		}
		if err != nil {
			break
		}
	}
	return out
}

const goodRequest = "POST /good HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"

// refusalCase is a request the guard refuses, with what the access log and the
// observers must show of it.
type refusalCase struct {
	name, raw     string
	status        int
	method, uri   string
	proto, inBody string // inBody: the cause named in the answer
}

// checkRefusal sends tc alone and pipelined after a good request, on the fast
// path and off it, and checks the answer, what the backend received (the good
// request only: never the refused one nor anything smuggled after it) and the
// records.
func checkRefusal(t *testing.T, tc refusalCase) {
	for _, fast := range []bool{true, false} {
		f := startFraming(t, fast)
		for _, after := range []bool{false, true} {
			t.Run(fmt.Sprintf("fast=%v/after_good=%v", fast, after), func(t *testing.T) {
				raw := tc.raw
				if after {
					raw = goodRequest + raw
				}
				got := converse(t, f.addr, raw, false)
				want := 1
				if after {
					want = 2
					if len(got) > 0 && (got[0].status != 200 || got[0].body != "ok") {
						t.Errorf("good request before the refused one answered %d %q, want 200 ok", got[0].status, got[0].body)
					}
				}
				if len(got) != want {
					t.Fatalf("%d answers %+v, want %d", len(got), got, want)
				}
				last := got[len(got)-1]
				if last.status != tc.status || !last.close || !strings.Contains(last.body, tc.inBody) {
					t.Errorf("answered %d close=%v %q, want %d with Connection: close naming %q", last.status, last.close, last.body, tc.status, tc.inBody)
				}
				var wantSeen []seen
				if after {
					wantSeen = []seen{{"POST", "/good", "body"}}
				}
				if gotSeen := f.up.take(); fmt.Sprint(gotSeen) != fmt.Sprint(wantSeen) {
					t.Errorf("backend received %+v, want %+v", gotSeen, wantSeen)
				}
				recs := f.records()
				if len(recs) != want {
					t.Fatalf("%d records %+v, want %d", len(recs), recs, want)
				}
				r := recs[len(recs)-1]
				if r.Status != tc.status || r.Method != tc.method || r.URI != tc.uri || r.Proto != tc.proto || r.Route != "" {
					t.Errorf("observer record %+v, want %d %s %s %s and no route", r, tc.status, tc.method, tc.uri, tc.proto)
				}
			})
		}
		// The access log has the refused requests too.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		f.srv.Shutdown(ctx)
		cancel()
		logged, err := os.ReadFile(f.logFile)
		if err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprintf("\"%s %s %s\" %d ", tc.method, tc.uri, tc.proto, tc.status)
		if n := strings.Count(string(logged), line); n != 2 {
			t.Errorf("fast=%v: access log has %d lines with %q, want 2:\n%s", fast, n, line, logged)
		}
	}
}

// Go ignores Transfer-Encoding on HTTP/1.0 (Go issue 12785) and so would read the
// chunked body as a second request: a request smuggled past a proxy in front.
func TestHTTP10TransferEncodingIsRefused(t *testing.T) {
	checkRefusal(t, refusalCase{
		name: "http/1.0 with transfer-encoding",
		raw: "POST /first HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		status: 400, method: "POST", uri: "/first", proto: "HTTP/1.0", inBody: "Transfer-Encoding on HTTP/1.0",
	})
}

// A request with both Content-Length and Transfer-Encoding means two different
// bodies to two different parsers: the classic CL.TE and TE.CL smuggling.
func TestContentLengthWithTransferEncodingIsRefused(t *testing.T) {
	checkRefusal(t, refusalCase{
		raw: "POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		status: 400, method: "POST", uri: "/first", proto: "HTTP/1.1", inBody: "Content-Length with Transfer-Encoding",
	})
}

// Go accepts any HTTP/1.x; a version this server does not speak gets 505, not
// HTTP/1.1 semantics it never asked for.
func TestUnsupportedVersionIs505(t *testing.T) {
	checkRefusal(t, refusalCase{
		raw:    "GET /static/a.txt HTTP/1.2\r\nHost: a\r\n\r\n",
		status: 505, method: "GET", uri: "/static/a.txt", proto: "HTTP/1.2", inBody: "unsupported HTTP version",
	})
}

// A Host that is not a host (x:80:80) would pick a site by a name no client can
// mean, and reach backends that parse it differently.
func TestBadHostIsRefused(t *testing.T) {
	checkRefusal(t, refusalCase{
		raw:    "GET /static/a.txt HTTP/1.1\r\nHost: x:80:80\r\n\r\n",
		status: 400, method: "GET", uri: "/static/a.txt", proto: "HTTP/1.1", inBody: "malformed Host",
	})
}

// A client cannot make its own request pass for a refused one by sending the
// marker field: without the connection's nonce it is an ordinary request.
func TestForgedRefusalMarkerIsOrdinary(t *testing.T) {
	f := startFraming(t, false)
	got := converse(t, f.addr, "GET /x HTTP/1.1\r\nHost: a\r\nX-Gantry-Refused: guess\r\n\r\n", false)
	if len(got) != 1 || got[0].status != 200 || got[0].body != "ok" {
		t.Errorf("answers %+v, want the route's 200 ok", got)
	}
	if s := f.up.take(); len(s) != 1 || s[0].target != "/x" {
		t.Errorf("backend received %+v", s)
	}
}
