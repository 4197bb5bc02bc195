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
	// Until the server closes (an answer to HEAD can stop ReadResponse early):
	// then every request it framed has been recorded.
	io.Copy(io.Discard, br)
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

// failed stands for any 4xx or 5xx: a body whose framing goes bad after its head
// was accepted ends with a read error, and what the route answers then is its
// own (a proxy says 502) — what matters is that nothing after it is read.
const failed = -1

// framingCase is one conversation: the answers' statuses in order (the
// connection must close after the last) and what the backend received.
type framingCase struct {
	name string
	raw  string
	half bool // the client half-closes after raw (for requests cut short)
	want []int
	seen []seen
}

func s(method, target, body string) seen { return seen{method, target, body} }

const chunkedHW = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"

// conformanceCases re-express the request vectors of gunicorn's
// tests/requests/{valid,invalid}, llhttp's test/request/*.md and Go's
// net/http readrequest_test.go, as gantry answers them behind the guard. Vectors
// that lacked a Host (which HTTP/1.1 requires) have one, so that they test their
// own point.
var conformanceCases = []framingCase{
	// Valid requests reach the backend as sent.
	{"http/1.0 get closes after", "GET /stuff/here?foo=bar HTTP/1.0\r\n\r\n", false, []int{200}, []seen{s("GET", "/stuff/here?foo=bar", "")}},
	{"post with content-length", "POST /post_identity_body_world?q=search HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nWorld", false, []int{200}, []seen{s("POST", "/post_identity_body_world?q=search", "World")}},
	{"chunked post", "POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1e\r\nall your base are belong to us\r\n0\r\n\r\n", false, []int{200}, []seen{s("POST", "/chunked", "all your base are belong to us")}},
	{"chunked with trailers", "POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nVary: *\r\nContent-Type: text/plain\r\n\r\n", false, []int{200}, []seen{s("POST", "/t", "hello world")}},
	{"chunk extensions", "POST /e HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ilovew3;somuchlove=aretheseparametersfor;another=withvalue\r\nhello\r\n6;blahblah;blah\r\n world\r\n0\r\n\r\n", false, []int{200}, []seen{s("POST", "/e", "hello world")}},
	{"quoted chunk extension", "POST /q HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ilovew3=\"I \\\"love\\\"; \\\\extensions\\\\\";blah;foo=bar\r\nhello\r\n0\r\n\r\n", false, []int{200}, []seen{s("POST", "/q", "hello")}},
	{"uppercase size and zero-padded last chunk", "PUT /url HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n000\r\n\r\n", false, []int{200}, []seen{s("PUT", "/url", "0123456789")}},
	{"chunked coding name in upper case", "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n" + chunkedHW, false, []int{200}, []seen{s("POST", "/c", "hello world")}},
	{"pipelined requests in order", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\nHost: a\r\n\r\n", false, []int{200, 200, 200}, []seen{s("GET", "/1", ""), s("POST", "/2", "hi"), s("GET", "/3", "")}},
	{"fast path then a body", "GET /static/a.txt HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", false, []int{200, 200}, []seen{s("POST", "/2", "hi")}},
	{"absolute-form target", "GET http://a/foo?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", false, []int{200}, []seen{s("GET", "/foo?x=1", "")}},
	{"absolute-form with userinfo", "GET http://user:pw@a:8080/u HTTP/1.1\r\nHost: a\r\n\r\n", false, []int{200}, []seen{s("GET", "/u", "")}},
	{"ipv6 host with port", "GET /6 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", false, []int{200}, []seen{s("GET", "/6", "")}},
	{"host with highest port", "GET /p HTTP/1.1\r\nHost: a.example:65535\r\n\r\n", false, []int{200}, []seen{s("GET", "/p", "")}},
	{"asterisk for options", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", false, []int{200}, nil},
	{"obs-text in a value", "GET /o HTTP/1.1\r\nHost: a\r\nX-A: caf\xc3\xa9\r\n\r\n", false, []int{200}, []seen{s("GET", "/o", "")}},
	{"tabs around a value", "GET /h HTTP/1.1\r\nHost:\ta\t\r\n\r\n", false, []int{200}, []seen{s("GET", "/h", "")}},
	{"http/1.0 with content-length", "POST /x HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc", false, []int{200}, []seen{s("POST", "/x", "abc")}},
	{"underscore names are ordinary fields", "GET /keep HTTP/1.0\r\nTransfer_Encoding: tricked\r\nContent-Length: 7\r\nContent_Length: -1E23\r\n\r\ntricked", false, []int{200}, []seen{s("GET", "/keep", "tricked")}},
	{"underscore te beside chunked", "POST /u HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedHW, false, []int{200}, []seen{s("POST", "/u", "hello world")}},
	{"announce is a token method", "ANNOUNCE /music HTTP/1.0\r\nHost: example.com\r\n\r\n", false, []int{200}, []seen{s("ANNOUNCE", "/music", "")}},
	{"path that looks like an authority", "GET //user@host/is/actually/a/path/ HTTP/1.1\r\nHost: a\r\n\r\n", false, []int{200}, []seen{s("GET", "/user@host/is/actually/a/path/", "")}}, // slashes merged, as nginx does
	{"request after connection close is never read", "GET /1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n", false, []int{200}, []seen{s("GET", "/1", "")}},
	{"content-length bytes end the body", "GET /static/a.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\nabcdef\n???", true, []int{200, 400}, nil},

	// Heads refused before net/http reads them: nothing reaches the backend.
	{"http/1.0 transfer-encoding smuggles", "POST /chunked_HTTP_1.0 HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false, []int{400}, nil},
	{"content-length with chunked", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false, []int{400}, nil},
	{"tab-prefixed chunked with content-length", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nTransfer-Encoding: \tchunked\r\n\r\n" + chunkedHW, false, []int{400}, nil},
	{"identity with content-length", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nWorld", false, []int{400}, nil},
	{"repeated transfer-encoding", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedHW, false, []int{400}, nil},
	{"chunked then gzip fields", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n" + chunkedHW, false, []int{400}, nil},
	{"coding list is not implemented", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked, identity, chunked\r\n\r\n" + chunkedHW, false, []int{501}, nil},
	{"gzip before chunked is not implemented", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + chunkedHW, false, []int{501}, nil},
	{"unknown coding pigeons", "PUT /url HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: pigeons\r\n\r\n", false, []int{501}, nil},
	{"two content-lengths", "GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 2\r\n\r\nxyz", false, []int{400}, nil},
	{"two equal content-lengths", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nContent-Length: 6\r\n\r\nabcdef", false, []int{400}, nil},
	{"content-length list", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", false, []int{400}, nil},
	{"negative content-length", "PUT /x HTTP/1.0\r\nCONTENT-LENGTH: -1\r\n\r\n", false, []int{400}, nil},
	{"minus zero content-length", "GET /first HTTP/1.0\r\nContent-Length: -0\r\n\r\n", false, []int{400}, nil},
	{"plus content-length", "GET /first HTTP/1.0\r\nContent-Length: +1\r\n\r\nx", false, []int{400}, nil},
	{"underscore in content-length", "GET /first HTTP/1.0\r\nContent-Length: 0_1\r\n\r\n", false, []int{400}, nil},
	{"words for content-length", "POST /x HTTP/1.0\r\nCONTENT-LENGTH: bla-bla-bla\r\n\r\n", false, []int{400}, nil},
	{"space inside content-length", "GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3 1\r\n\r\nxyz", false, []int{400}, nil},
	{"content-length overflow", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000000000000\r\n\r\n", false, []int{400}, nil},
	{"space before colon", "GET /x HTTP/1.1\r\nHost: a\r\nContent-Length : 3\r\n\r\nxyz", false, []int{400}, nil},
	{"obs-fold", "GET / HTTP/1.1\r\nLong: one\r\n two\r\nHost: localhost\r\n\r\n", false, []int{400}, nil},
	{"bare lf ends a field", "GET / HTTP/1.1\r\nHost: x\r\nNewline: a\nContent-Length: 26\r\nGET / HTTP/1.1\nHost: x\r\n\r\n", false, []int{400}, nil},
	{"lf smuggles transfer-encoding", "POST / HTTP/1.1\r\nHost: localhost:5000\r\nx:x\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n\r\n", false, []int{400}, nil},
	{"cr separates fields", "GET / HTTP/1.1\r\nHost: a\r\nFoo: 1\rBar: 2\r\n\r\n", false, []int{400}, nil},
	{"cr and dummy byte start a request", "GET / HTTP/1.1\r\nConnection: close\r\nHost: a\r\n\rZGET /evil: HTTP/1.1\r\nHost: a\r\n\r\n", false, []int{400}, nil},
	{"lf inside the request line", "GET\n/\nHTTP/1.1\r\n\r\n", false, []int{400}, nil},
	{"nul in a field name", "GET /foo HTTP/1.1\r\nHost: a\r\nba\x00z: bar\r\n\r\n", false, []int{400}, nil},
	{"at sign in a field name", "GET / HTTP/1.1\r\nHost: a\r\nFo@: Failure\r\n\r\n", false, []int{400}, nil},
	{"empty field name", "GET / HTTP/1.1\r\nHost: a\r\n: Bar\r\n\r\n", false, []int{400}, nil},
	{"non-ascii field name", "GET /g HTTP/1.1\r\nHost: a\r\nContent-Length\xc3\x9f: 3\r\nContent-Length: 3\r\n\r\nxyz", false, []int{400}, nil},
	{"bel in a value", "GET /foo HTTP/1.1\r\nHost: example.com\r\nX-Value: plain\x07injected\r\n\r\n", false, []int{400}, nil},
	{"del in a value", "GET /foo HTTP/1.1\r\nHost: example.com\r\nX-Value: plain\x7finjected\r\n\r\n", false, []int{400}, nil},
	{"two hosts", "GET /x HTTP/1.1\r\nHost: localhost\r\nHost: evil.example.com\r\n\r\n", false, []int{400}, nil},
	{"missing host", "GET /x HTTP/1.1\r\n\r\n", false, []int{400}, nil},
	{"host with two ports", "GET /x HTTP/1.1\r\nHost: x:80:80\r\n\r\n", false, []int{400}, nil},
	{"host port too large", "GET /x HTTP/1.1\r\nHost: x:65536\r\n\r\n", false, []int{400}, nil},
	{"host with equals and port", "GET /test HTTP/1.1\r\nHost: 0.0.0.0=5000:x\r\n\r\n", false, []int{400}, nil},
	{"host with a path", "GET /x HTTP/1.1\r\nHost: a/b\r\n\r\n", false, []int{400}, nil},
	{"absolute-form with broken authority", "PUT s://]ufd/: HTTP/1.1\r\nHost: a\r\n\r\n", false, []int{400}, nil},
	{"asterisk for get", "GET * HTTP/1.1\r\nHost: example.com\r\n\r\n", false, []int{400}, nil},
	{"authority-form for get", "GET example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", false, []int{400}, nil},
	{"relative target", "GET foo/bar HTTP/1.1\r\nHost: example.com\r\n\r\n", false, []int{400}, nil},
	{"dot-dot relative target", "GET ../../../../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n", false, []int{400}, nil},
	{"request line without target", "GET HTTP/1.1\r\n\r\n", false, []int{400}, nil},
	{"empty target", "GET  HTTP/1.1\r\nHost: a\r\n\r\n", false, []int{400}, nil},
	{"colon in method", "bla:rgh /foo HTTP/1.1\r\nHost: a\r\n\r\n", false, []int{400}, nil},
	{"colon after method", "GET: /stuff/here?foo=bar HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz", false, []int{400}, nil},
	{"nul in method", "GET\x00PROXY /foo HTTP/1.1\r\n\r\n", false, []int{400}, nil},
	{"non-ascii method", "GET\xc3\x9f /germans.. HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", false, []int{400}, nil},
	{"ftp version", "GET /foo FTP/1.1\r\n\r\n", false, []int{400}, nil},
	{"ice version", "GET /music/sweet/music ICE/1.0\r\nHost: example.com\r\n\r\n", false, []int{400}, nil},
	{"ihttp version", "GET /music/sweet/music IHTTP/1.0\r\nHost: example.com\r\n\r\n", false, []int{400}, nil},
	{"rtsp version", "PUT /music/sweet/music RTSP/1.0\r\nHost: example.com\r\n\r\n", false, []int{400}, nil},
	{"version without dot", "GET /test HTTP/111\r\nHost: localhost\r\n\r\n", false, []int{400}, nil},
	{"two-digit minor version", "GET /foo HTTP/0.99\r\n\r\n", false, []int{400}, nil},
	{"endless major version", "GET /the/future HTTP/1111111111111111111111111111111111111111.1\r\nContent-Length: 7\r\n\r\nOld Man", false, []int{400}, nil},
	{"http/1.2", "GET /x HTTP/1.2\r\nHost: a\r\n\r\n", false, []int{505}, nil},
	{"http/2.0 request line", "GET /foo HTTP/2.0\r\n\r\n", false, []int{505}, nil},
	{"http/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false, []int{505}, nil},
	{"incomplete head then eof", "GET /foo/bar HTTP/1.0\r\nbaz", true, []int{400}, nil},
	{"good request then refused", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.2\r\nHost: a\r\n\r\n", false, []int{200, 505}, []seen{s("GET", "/1", "")}},

	// Bodies whose framing goes bad after the head: the body fails, the
	// connection closes, and nothing after it is read as a request.
	{"underscore in chunk size", "POST /us HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6_0\r\n world\r\n0\r\n\r\nPOST /after HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", false, []int{failed}, nil},
	{"space after chunk size", "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0 \r\n\r\n", false, []int{failed}, nil},
	{"space before chunk size", "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n 0\r\n\r\n", false, []int{failed}, nil},
	{"words after chunk size", "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2 erfrferferf\r\naa\r\n0 rrrr\r\n\r\n", false, []int{failed}, nil},
	{"bare lf after chunk size", "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\n;\r\nhello\r\n0\r\n\r\n", false, []int{failed}, nil},
	{"extension without size", "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n;foo=bar\r\nhello\r\n0\r\n\r\n", false, []int{failed}, nil},
	{"empty chunk size", "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n", false, []int{failed}, nil},
	{"bare cr in extension", "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=val\rue\r\nhello\r\n0\r\n\r\n", false, []int{failed}, nil},
	{"minus chunk size", "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", false, []int{failed}, nil},
	{"plus chunk size", "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", false, []int{failed}, nil},
	{"chunk longer than its size", "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello world\r\n0\r\n\r\n", false, []int{failed}, nil},
	{"content-length in trailers", "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 99\r\n\r\n", false, []int{failed}, nil},
	{"host in trailers", "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nHost: evil.example.com\r\n\r\n", false, []int{failed}, nil},
	{"transfer-encoding in trailers", "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n", false, []int{failed}, nil},
	{"request line where the final crlf belongs", "POST /m HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", false, []int{failed}, nil},
}

// TestFramingConformance runs every vector against a real gantry with the fast
// path on and off: the same answers, the same requests at the backend.
func TestFramingConformance(t *testing.T) {
	for _, fast := range []bool{true, false} {
		f := startFraming(t, fast)
		for _, tc := range conformanceCases {
			t.Run(fmt.Sprintf("fast=%v/%s", fast, tc.name), func(t *testing.T) {
				got := converse(t, f.addr, tc.raw, tc.half)
				gotSeen := f.up.take()
				recs := f.records()
				if len(got) != len(tc.want) {
					t.Fatalf("answers %+v, want statuses %v", got, tc.want)
				}
				for i, w := range tc.want {
					if w == failed && got[i].status < 400 || w != failed && got[i].status != w {
						t.Errorf("answer %d: %d %q, want %d (records %+v)", i, got[i].status, got[i].body, w, recs)
					}
				}
				if fmt.Sprint(gotSeen) != fmt.Sprint(tc.seen) {
					t.Errorf("backend received %q, want %q", gotSeen, tc.seen)
				}
			})
		}
	}
}

// FuzzFraming feeds arbitrary bytes as one connection to a gantry with the fast
// path and to one without: neither may panic or hang, and both must frame the
// same requests (the same records reach the observers, the same number of
// answers reach the client).
func FuzzFraming(f *testing.F) {
	for _, tc := range conformanceCases {
		f.Add(tc.raw) // every conformance vector, valid and not
	}
	f.Add(goodRequest + "GET /static/a.txt HTTP/1.1\r\nHost: a\r\n\r\n")                                // a body, then a fast request
	f.Add("GET /static/a.txt HTTP/1.1\r\nHost: a\r\n\r\nGET /static/a.txt HTTP/1.2\r\nHost: a\r\n\r\n") // fast, then refused
	f.Add("HEAD /static/a.txt HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n")           // a bodiless answer
	fast, slow := startFraming(f, true), startFraming(f, false)
	f.Fuzz(func(t *testing.T, raw string) {
		a := converse(t, fast.addr, raw, true)
		b := converse(t, slow.addr, raw, true)
		recA, recB := fast.records(), slow.records()
		ra, rb := framed(recA), framed(recB)
		fast.up.take()
		slow.up.take()
		if ra != rb {
			t.Errorf("fast path framed\n%s\nnet/http framed\n%s", ra, rb)
		}
		// The half-close ends the conversation, and net/http takes it for the
		// client leaving: a proxied request still waiting on the upstream then
		// closes unanswered (aborted=client), on either path, as timing has it.
		if len(a) != len(b) && !clientAborted(recA) && !clientAborted(recB) {
			t.Errorf("%d answers with the fast path, %d without", len(a), len(b))
		}
	})
}

func clientAborted(recs []accesslog.Record) bool {
	for _, r := range recs {
		if r.Aborted == "client" {
			return true
		}
	}
	return false
}

// framed lists the requests of records; the status too unless the proxy route
// answered, whose status depends on when the half-close is seen.
func framed(recs []accesslog.Record) string {
	var b strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&b, "%s %s %s", r.Method, r.URI, r.Proto)
		if r.Route != "/" {
			fmt.Fprintf(&b, " %d", r.Status)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// After a hijack (a proxied WebSocket upgrade) the bytes on the connection are
// not HTTP: the guard must pass them through, not refuse them as a head.
func TestUpgradeBytesPassTheGuard(t *testing.T) {
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		io.Copy(c, brw) // echo until the client closes
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })
	for _, fast := range []bool{true, false} {
		_, base, _ := startServer(t, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\nfast_path=%v\n[admin]\nlisten=\"off\"\n[[site]]\n  [[site.route]]\n  path=\"/\"\n  proxy=\"http://%s\"\n", fast, ln.Addr()))
		c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("fast=%v: upgrade answered %v, %v", fast, resp, err)
		}
		// Not a request head: binary, a bare LF, a smuggling-looking line.
		msg := "\x81\x05hello\nPOST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
		io.WriteString(c, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Errorf("fast=%v: echoed %q, %v; want %q", fast, got, err, msg)
		}
		c.Close()
	}
}

// TestRequestAfterChunkedBodyOnIdleConnection sends a chunked POST, waits for its
// answer, and only then the next request on the same connection: the guard must
// scan the new head from its start (a trailer section's end once carried over
// into it, and an empty buffer then panicked the connection).
func TestRequestAfterChunkedBodyOnIdleConnection(t *testing.T) {
	for _, fast := range []bool{true, false} {
		f := startFraming(t, fast)
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		for i, raw := range []string{
			"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
			"POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\nX-T: 1\r\n\r\n",
			"GET /c HTTP/1.1\r\nHost: a\r\n\r\n",
		} {
			io.WriteString(c, raw)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("fast=%v: request %d on the idle connection: %v", fast, i, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("fast=%v: request %d: status %d", fast, i, resp.StatusCode)
			}
		}
		if got := f.up.take(); len(got) != 3 || got[0] != s("POST", "/a", "abc") || got[1] != s("POST", "/b", "xy") || got[2] != s("GET", "/c", "") {
			t.Errorf("fast=%v: upstream got %v", fast, got)
		}
	}
}

// An absolute-form target with an empty path ("http://a", "http://a?x=1") names
// the path "/" (RFC 9110 §4.2.3, RFC 9112 §3.2.2), as nginx reads it; path
// normalisation must not answer such a valid request with 400.
func TestAbsoluteFormWithEmptyPathIsRoot(t *testing.T) {
	for _, fast := range []bool{true, false} {
		f := startFraming(t, fast)
		for _, target := range []string{"http://a", "http://a?x=1"} {
			got := converse(t, f.addr, "GET "+target+" HTTP/1.1\r\nHost: a\r\n\r\n", false)
			if len(got) != 1 || got[0].status != http.StatusOK {
				t.Errorf("fast_path=%v: GET %s: answers %+v, want one 200 from the upstream", fast, target, got)
			}
			if seen := f.up.take(); len(seen) != 1 || !strings.HasPrefix(seen[0].target, "/") {
				t.Errorf("fast_path=%v: GET %s: upstream saw %+v, want one request for /", fast, target, seen)
			}
		}
	}
}
