package http1

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testHandler answers GET /fast with a fixed body and declines everything else.
type testHandler struct {
	body   []byte
	served atomic.Int64
	// entered, when set, is signalled before answering, and the answer waits
	// for release.
	entered, release chan struct{}
}

var lengthHeader = []string{"5"}

func (h *testHandler) ServeFast(w *ResponseWriter, r *http.Request) bool {
	if r.URL.Path != "/fast" {
		return false
	}
	if h.entered != nil {
		h.entered <- struct{}{}
		<-h.release
	}
	h.served.Add(1)
	w.Header()["Content-Length"] = lengthHeader
	w.Write(h.body)
	return true
}

func startTest(t *testing.T, h *testHandler, headerTimeout ...time.Duration) (*Server, string) {
	t.Helper()
	fb := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "fallback %s %s %q", r.Method, r.RequestURI, b)
	})}
	s := &Server{Handler: h, Fallback: fb, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, MaxHeaderBytes: 1 << 20}
	if len(headerTimeout) > 0 {
		s.ReadHeaderTimeout = headerTimeout[0]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s, ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// TestHandoffReplaysEverything sends fast requests, then a POST with a body and
// more requests pipelined behind it: net/http must see every byte after the last
// fast request, in order, and the fast loop must not answer again.
func TestHandoffReplaysEverything(t *testing.T) {
	h := &testHandler{body: []byte("hello")}
	_, addr := startTest(t, h)
	c := dial(t, addr)
	raw := "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody" +
		"GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	go io.WriteString(c, raw)
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	if strings.Count(s, "\r\n\r\nhello") != 2 || !strings.Contains(s, `fallback POST /p "body"`) ||
		!strings.HasSuffix(s, `fallback GET /fast ""`) {
		t.Errorf("answers:\n%s", s)
	}
	if n := h.served.Load(); n != 2 {
		t.Errorf("%d fast answers, want 2", n)
	}
}

// TestShutdownWaitsForInFlight checks that Shutdown closes an idle connection at
// once, lets a request being answered finish (with Connection: close), and only
// then returns.
func TestShutdownWaitsForInFlight(t *testing.T) {
	h := &testHandler{body: []byte("hello"), entered: make(chan struct{}), release: make(chan struct{})}
	s, addr := startTest(t, h)
	busy := dial(t, addr)
	io.WriteString(busy, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	<-h.entered
	idle := dial(t, addr)
	io.WriteString(idle, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n") // handed to net/http
	buf := make([]byte, 1024)
	if n, err := idle.Read(buf); err != nil || !bytes.Contains(buf[:n], []byte("fallback GET /other")) {
		t.Fatalf("handed-off answer %q, %v", buf[:n], err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	if n, err := idle.Read(buf); err != io.EOF {
		t.Errorf("idle handed-off connection: read %q, %v; want EOF", buf[:n], err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	close(h.release)
	got, err := io.ReadAll(busy)
	if err != nil || !bytes.Contains(got, []byte("Connection: close\r\n")) || !bytes.HasSuffix(got, []byte("hello")) {
		t.Errorf("in-flight answer %q, %v", got, err)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Errorf("still accepting after Shutdown")
	}
}

// TestIdleFastConnectionClosedOnShutdown: a keep-alive connection between fast
// requests is closed by Shutdown without waiting for its idle timeout.
func TestIdleFastConnectionClosedOnShutdown(t *testing.T) {
	h := &testHandler{body: []byte("hello")}
	s, addr := startTest(t, h)
	c := dial(t, addr)
	io.WriteString(c, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 1024)
	if n, err := c.Read(buf); err != nil || !bytes.HasSuffix(buf[:n], []byte("hello")) {
		t.Fatalf("answer %q, %v", buf[:n], err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if n, err := c.Read(buf); err != io.EOF {
		t.Errorf("read %q, %v; want EOF", buf[:n], err)
	}
}

// TestHeaderTimeout: a client that never finishes its head is cut at
// ReadHeaderTimeout, without an answer, as net/http does.
func TestHeaderTimeout(t *testing.T) {
	h := &testHandler{body: []byte("hello")}
	_, addr := startTest(t, h, 200*time.Millisecond)
	c := dial(t, addr)
	io.WriteString(c, "GET /fast HTTP/1.1\r\nHo")
	start := time.Now()
	got, err := io.ReadAll(c)
	if err != nil || len(got) != 0 {
		t.Errorf("read %q, %v; want a silent close", got, err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("connection held past the header timeout")
	}
}

func BenchmarkFastRequest(b *testing.B) {
	h := &testHandler{body: bytes.Repeat([]byte("x"), 5)}
	s := &Server{Handler: h, Fallback: &http.Server{}, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, WriteTimeout: time.Minute}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Shutdown(context.Background())
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /fast HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench/" + strconv.Itoa(1) + "\r\n\r\n")
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		c.Write(req)
		got := 0
		for !bytes.HasSuffix(buf[:got], []byte("xxxxx")) {
			n, err := c.Read(buf[got:])
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
	}
}
