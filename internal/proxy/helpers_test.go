package proxy

import (
	"bufio"
	"encoding/json"
	"errors"
	"gantry/internal/peertest"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// seen is what the echo upstream reports back about the request it got.
type seen struct {
	Method  string      `json:"method"`
	URI     string      `json:"uri"`
	Host    string      `json:"host"`
	Header  http.Header `json:"header"`
	Body    string      `json:"body"`
	Chunked bool        `json:"chunked"`
}

func echoHandler(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(seen{
		Method:  r.Method,
		URI:     r.RequestURI,
		Host:    r.Host,
		Header:  r.Header,
		Body:    string(body),
		Chunked: len(r.TransferEncoding) > 0,
	})
}

// startUpstream serves h on 127.0.0.1:0 and returns its base URL.
func startUpstream(t testing.TB, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

// startUnixUpstream serves h on a unix socket and returns "unix:PATH".
func startUnixUpstream(t testing.TB, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "up.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return "unix:" + sock
}

// front is gantry's side: the proxy Handler behind a real http.Server.
type front struct {
	URL  string
	Addr string
	H    *Handler
	Log  *peertest.LogBuffer
	srv  *httptest.Server
}

func startFront(t testing.TB, opts Options) *front {
	t.Helper()
	return startFrontWith(t, opts, nil)
}

// startFrontWith lets a test adjust the front http.Server before it starts.
func startFrontWith(t testing.TB, opts Options, tune func(*http.Server)) *front {
	t.Helper()
	lb := &peertest.LogBuffer{}
	h, err := New(opts, slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(h)
	if tune != nil {
		tune(s.Config)
	}
	s.Start()
	t.Cleanup(func() {
		s.Close()
		h.transport.CloseIdleConnections()
	})
	return &front{URL: s.URL, Addr: s.Listener.Addr().String(), H: h, Log: lb, srv: s}
}

// client returns an http.Client that never uses a proxy from the environment.
func client(t testing.TB) *http.Client {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func getSeen(t *testing.T, c *http.Client, req *http.Request) seen {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("status %d: %s", res.StatusCode, b)
	}
	var s seen
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// rawRoundTrip writes raw bytes to addr and returns everything the server
// sends back until it closes the connection or the deadline passes. It does
// not half-close: net/http reads that as the client going away. The last
// request in raw should carry "Connection: close".
func rawRoundTrip(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("reading raw response: %v", err)
	}
	return string(b)
}

// statusLines parses a raw stream of HTTP/1.1 responses and returns their
// status lines ("200 OK") in order.
func statusLines(raw string) []string {
	var out []string
	br := bufio.NewReader(strings.NewReader(raw))
	for {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		out = append(out, res.Status)
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}
