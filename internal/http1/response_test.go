package http1

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// gatewayHandler answers like a gateway relaying an application: it sets what
// the query asks for and writes the body in the pieces it names, so each case is
// one request line.
func gatewayHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for _, kv := range q["h"] {
		k, v, _ := strings.Cut(kv, ":")
		w.Header().Add(k, v)
	}
	if q.Has("early") {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
	}
	status := http.StatusOK
	if s := q.Get("status"); s != "" {
		status = atoi(s)
	}
	if q.Has("status") || q.Has("early") {
		w.WriteHeader(status)
	}
	for _, piece := range q["w"] {
		switch {
		case piece == "flush":
			http.NewResponseController(w).Flush()
		case strings.HasPrefix(piece, "html"):
			io.WriteString(w, "<!doctype html><p>"+strings.Repeat("x", atoi(piece[4:])))
		case strings.HasPrefix(piece, "copy"):
			// A reader that is not a file: ReadFrom copies it through Write.
			w.(io.ReaderFrom).ReadFrom(strings.NewReader(strings.Repeat("c", atoi(piece[4:]))))
		default:
			w.Write(bytes.Repeat([]byte("a"), atoi(piece)))
		}
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// fastGateway serves every request on the fast path with gatewayHandler.
type fastGateway struct{}

func (fastGateway) ServeFast(w *ResponseWriter, r *http.Request) bool {
	gatewayHandler(w, w.WatchClient(r))
	return true
}

func startGatewayPair(t *testing.T) (fastAddr, slowAddr string) {
	t.Helper()
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	fast := &Server{Handler: fastGateway{}, Fallback: &http.Server{Handler: http.HandlerFunc(gatewayHandler)},
		ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}
	slow := &http.Server{Handler: http.HandlerFunc(gatewayHandler), ReadHeaderTimeout: 5 * time.Second}
	fl, sl := listen(), listen()
	go fast.Serve(fl)
	go slow.Serve(sl)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fast.Shutdown(ctx)
		slow.Shutdown(ctx)
	})
	return fl.Addr().String(), sl.Addr().String()
}

// roundTrip sends raw and returns everything the server sends until it closes.
func roundTrip(t *testing.T, addr, raw string) string {
	t.Helper()
	c := dial(t, addr)
	go io.WriteString(c, raw)
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading answer: %v (got %q)", err, b)
	}
	return string(b)
}

var dateField = regexp.MustCompile(`(?m)^Date: [^\r]*\r$`)

// TestGatewayResponsesMatchNetHTTP runs handler behaviours a gateway relays
// (bodies of unknown length, flushes, sniffing, short and long bodies, 1xx, HTTP/1.0)
// on the fast path and on net/http and requires the same bytes on the wire.
func TestGatewayResponsesMatchNetHTTP(t *testing.T) {
	fa, sa := startGatewayPair(t)
	const closing = "GET /?w=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	cases := []struct{ name, raw string }{
		{"small body gets a length", "GET /?w=13 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"empty body gets length 0", "GET /?h=Content-Type:text/plain HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"buffer exactly full", "GET /?w=2048 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"one past the buffer is chunked", "GET /?w=2049 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"pieces across the buffer", "GET /?w=100&w=3000&w=7&w=40000 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"large single write", "GET /?w=70000 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"flush first", "GET /?w=flush&w=10&w=flush&w=20 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"flush after data", "GET /?w=10&w=flush HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"sniffed html", "GET /?w=html20 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"no sniffing with content-encoding", "GET /?h=Content-Encoding:gzip&w=html20 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"declared length", "GET /?h=Content-Length:10&w=10 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"declared length, large body", "GET /?h=Content-Length:30000&h=Content-Type:a/b&w=30000 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"short of the declared length closes", "GET /?h=Content-Length:10&w=4 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"past the declared length", "GET /?h=Content-Length:4&w=10&w=2 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"invalid declared length", "GET /?h=Content-Length:x1&w=3 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"204 refuses a body", "GET /?status=204&h=Content-Type:a/b&h=Content-Length:3&w=3 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"304 drops framing and type", "GET /?status=304&h=Content-Type:a/b&h=Content-Length:3&h=Etag:\"e\" HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"unknown status text", "GET /?status=299&w=2 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"early hints", "GET /?early=1&w=4 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"head with a body written", "HEAD /?w=9 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"head without a body", "HEAD /?h=Content-Type:a/b HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"head with a large body", "HEAD /?w=5000 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"http/1.0 small body", "GET /?w=3 HTTP/1.0\r\n\r\n"},
		{"http/1.0 keep-alive small body", "GET /?w=3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"},
		{"http/1.0 keep-alive large body closes", "GET /?w=3000 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"},
		{"http/1.0 keep-alive flushed", "GET /?w=3&w=flush HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"},
		{"client asks to close", "GET /?w=3000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
		{"handler asks to close", "GET /?h=Connection:close&w=3 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"identity transfer encoding", "GET /?h=Transfer-Encoding:identity&w=3000 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"handler's chunked", "GET /?h=Transfer-Encoding:chunked&w=30 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"handler's date", "GET /?h=Date:Mon,%2001%20Jan%202024%2000:00:00%20GMT&w=1 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"invalid field name dropped", "GET /?h=Bad%20Name:v&h=X-Ok:%20v%20&w=1 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"copy sniffed", "GET /?w=copy600 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"copy short", "GET /?w=copy100 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"copy typed", "GET /?h=Content-Type:a/b&w=copy5000 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"copy with length", "GET /?h=Content-Type:a/b&h=Content-Length:5000&w=copy5000 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"pipelined", "GET /?w=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /?w=3000 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /?w=2 HTTP/1.1\r\nHost: x\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.raw + closing
			got := dateField.ReplaceAllString(roundTrip(t, fa, raw), "Date: -\r")
			want := dateField.ReplaceAllString(roundTrip(t, sa, raw), "Date: -\r")
			if got != want {
				t.Errorf("fast path answered\n%.3000q\nnet/http answered\n%.3000q", got, want)
			}
		})
	}
}

// blockingGateway waits for its request's context and reports why it ended.
type blockingGateway struct{ ended chan error }

func (g blockingGateway) ServeFast(w *ResponseWriter, r *http.Request) bool {
	r = w.WatchClient(r)
	if r.URL.Path == "/slow" {
		select {
		case <-r.Context().Done():
			g.ended <- context.Cause(r.Context())
			return true
		case <-time.After(300 * time.Millisecond):
		}
	}
	w.Header().Set("Content-Length", "2")
	io.WriteString(w, "ok")
	return true
}

// TestWatchSeesTheClientLeave: a slow request's context ends with ErrClientGone
// when the client closes its connection, as net/http's would.
func TestWatchSeesTheClientLeave(t *testing.T) {
	g := blockingGateway{ended: make(chan error, 1)}
	c := startWatching(t, g)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	c.Close()
	select {
	case err := <-g.ended:
		if !errors.Is(err, ErrClientGone) {
			t.Errorf("context ended with %v, want ErrClientGone", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler never learnt that the client left")
	}
}

// TestWatchKeepsPipelinedBytes: bytes of the next request that the watch read
// while a slow request ran are served, not lost.
func TestWatchKeepsPipelinedBytes(t *testing.T) {
	g := blockingGateway{ended: make(chan error, 1)}
	c := startWatching(t, g)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	io.WriteString(c, "GET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(got), "HTTP/1.1 200 OK"); n != 3 {
		t.Errorf("%d answers, want 3:\n%s", n, got)
	}
	select {
	case err := <-g.ended:
		t.Errorf("the slow request's context ended early: %v", err)
	default:
	}
}

// startWatching serves g with the watch starting at once, and dials it.
func startWatching(t *testing.T, g blockingGateway) net.Conn {
	t.Helper()
	s := &Server{Handler: g, Fallback: &http.Server{}, ReadHeaderTimeout: 5 * time.Second, WatchAfter: time.Nanosecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return dial(t, ln.Addr().String())
}
