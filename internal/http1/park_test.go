package http1

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gantry/internal/peertest"
)

const fastGet = "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"

// startParking serves h with connections parked as soon as they wait.
func startParking(t *testing.T, h *testHandler, idle, header time.Duration) (*Server, string) {
	t.Helper()
	s := &Server{Handler: h, Fallback: &http.Server{}, ReadHeaderTimeout: header, IdleTimeout: idle,
		MaxHeaderBytes: 1 << 20, ParkAfter: time.Millisecond}
	return s, serveTest(t, s)
}

// readAnswer reads one answer of testHandler ("hello" ends it) from c.
func readAnswer(t *testing.T, c net.Conn) string {
	t.Helper()
	return readAnswers(t, c, 1)
}

// readAnswers reads n answers.
func readAnswers(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	var got []byte
	buf := make([]byte, 1024)
	for bytes.Count(got, []byte("hello")) < n {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	return string(got)
}

// expectClosed reads until the server closes c, failing on any answer byte.
func expectClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("%s: %v", what, err)
	}
	if len(got) != 0 {
		t.Fatalf("%s: read %q, want a close", what, got)
	}
}

// TestParkedConnectionServed: a keep-alive connection parked between requests
// is served again when its next request comes, as often as it comes, and
// pipelined requests in one write are answered without parking in between.
func TestParkedConnectionServed(t *testing.T) {
	h := &testHandler{body: []byte("hello")}
	s, addr := startParking(t, h, time.Minute, time.Minute)
	c := dial(t, addr)
	for i := range 3 {
		io.WriteString(c, fastGet)
		if got := readAnswer(t, c); !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") {
			t.Fatalf("request %d: answer %q", i, got)
		}
		peertest.WaitFor(t, 0, "the connection parked", func() bool { return s.Parked() == 1 })
	}
	io.WriteString(c, fastGet+fastGet)
	if got := readAnswers(t, c, 2); strings.Count(got, "HTTP/1.1 200 OK\r\n") != 2 {
		t.Fatalf("pipelined answers %q", got)
	}
	peertest.WaitFor(t, 0, "the connection parked", func() bool { return s.Parked() == 1 })
	if n := h.served.Load(); n != 5 {
		t.Errorf("%d answers, want 5", n)
	}
}

// TestParkSeesBufferedBytes: bytes already in the socket when a connection is
// parked wake it at once (the epoll registration is level-triggered): the
// parker is handed an idle connection whose next request has arrived.
func TestParkSeesBufferedBytes(t *testing.T) {
	h := &testHandler{body: []byte("hello")}
	s := &Server{Handler: h, Fallback: &http.Server{}, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute}
	s.init(&net.TCPAddr{})
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client := dial(t, ln.Addr().String())
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(s, sc)
	s.track(c, true)
	io.WriteString(client, fastGet)
	// The request is in the server's socket before the connection is parked.
	peertest.WaitFor(t, 0, "the request in the socket", func() bool {
		var n int
		c.raw.Control(func(fd uintptr) {
			var b [1]byte
			n, _, _ = recvPeek(int(fd), b[:])
		})
		return n == 1
	})
	c.state.Store(stateIdle)
	if !s.getParker().park(c, time.Now().Add(time.Minute)) {
		t.Fatal("park refused")
	}
	if got := readAnswer(t, client); !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") {
		t.Fatalf("answer %q", got)
	}
}

// TestParkedIdleTimeout: the parker closes a connection at its idle timeout,
// and lets go of it.
func TestParkedIdleTimeout(t *testing.T) {
	h := &testHandler{body: []byte("hello")}
	s, addr := startParking(t, h, 300*time.Millisecond, time.Minute)
	c := dial(t, addr)
	io.WriteString(c, fastGet)
	readAnswer(t, c)
	peertest.WaitFor(t, 0, "the connection parked", func() bool { return s.Parked() == 1 })
	expectClosed(t, c, "parked past its idle timeout")
	peertest.WaitFor(t, 0, "the connection untracked", func() bool { return tracked(s) == 0 && s.Parked() == 0 })
}

// TestShutdownClosesParked: Shutdown closes parked connections at once and
// returns, and its parker stops.
func TestShutdownClosesParked(t *testing.T) {
	h := &testHandler{body: []byte("hello")}
	s, addr := startParking(t, h, time.Hour, time.Minute)
	var clients []net.Conn
	for range 3 {
		c := dial(t, addr)
		io.WriteString(c, fastGet)
		readAnswer(t, c)
		clients = append(clients, c)
	}
	peertest.WaitFor(t, 0, "the connections parked", func() bool { return s.Parked() == 3 })
	p := s.parker.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, c := range clients {
		expectClosed(t, c, "parked at Shutdown")
	}
	select {
	case <-p.done:
	default:
		t.Error("parker still running after Shutdown")
	}
}

// closingListener keeps the connections it accepted, to close them under the
// server as a ban does (internal/ban's own test bans a parked connection).
type closingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *closingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// TestParkedClosedUnder: with KeepParkedConns, a parked connection closed by
// someone else (a ban) is let go by the parker and by Shutdown's count.
func TestParkedClosedUnder(t *testing.T) {
	h := &testHandler{body: []byte("hello")}
	s := &Server{Handler: h, Fallback: &http.Server{}, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Hour,
		ParkAfter: time.Millisecond, KeepParkedConns: true, reapEveryD: 10 * time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &closingListener{Listener: ln}
	go s.Serve(cl)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	c := dial(t, ln.Addr().String())
	io.WriteString(c, fastGet)
	readAnswer(t, c)
	peertest.WaitFor(t, 0, "the connection parked", func() bool { return s.Parked() == 1 })
	cl.mu.Lock()
	cl.conns[0].Close()
	cl.mu.Unlock()
	expectClosed(t, c, "closed under the parker")
	peertest.WaitFor(t, 0, "the connection let go", func() bool { return s.Parked() == 0 && tracked(s) == 0 })
}

// TestParkedNoGoroutines: a thousand idle keep-alive connections hold no
// goroutine each.
func TestParkedNoGoroutines(t *testing.T) {
	const n = 1000
	h := &testHandler{body: []byte("hello")}
	s, addr := startParking(t, h, time.Minute, time.Minute)
	before := runtime.NumGoroutine()
	for range n {
		c := dialRaw(t, addr)
		t.Cleanup(c.close)
		c.get(t, "hello")
	}
	peertest.WaitFor(t, 0, "every connection parked", func() bool { return s.Parked() == n })
	if g := runtime.NumGoroutine() - before; g > 10 {
		t.Errorf("%d more goroutines with %d parked connections", g, n)
	}
}

// TestSlowlorisAfterPark: a client that dribbles a head one byte at a time
// after being parked is cut at ReadHeaderTimeout, long before its idle timeout.
func TestSlowlorisAfterPark(t *testing.T) {
	h := &testHandler{body: []byte("hello")}
	s, addr := startParking(t, h, time.Hour, 300*time.Millisecond)
	c := dial(t, addr)
	io.WriteString(c, fastGet)
	readAnswer(t, c)
	peertest.WaitFor(t, 0, "the connection parked", func() bool { return s.Parked() == 1 })
	head := "GET /fast HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 400)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := range len(head) {
		if _, err := c.Write([]byte{head[i]}); err != nil {
			return // cut: the write saw the close
		}
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return // cut
		}
		<-tick.C
	}
	t.Fatalf("%d bytes of head dribbled over %v and the connection is still open", len(head), 20*time.Millisecond*time.Duration(len(head)))
}

func recvPeek(fd int, b []byte) (int, unix.Sockaddr, error) {
	return unix.Recvfrom(fd, b, unix.MSG_PEEK|unix.MSG_DONTWAIT)
}

// TestTLSIdleWait: a TLS keep-alive connection waits for its next request
// reading one byte without a request state; requests one at a time and
// several in one record (decrypted before the wait) are all answered.
func TestTLSIdleWait(t *testing.T) {
	cfg, pool := peertest.SelfSigned(t)
	h := &testHandler{body: []byte("hello")}
	s := &Server{Handler: h, Fallback: &http.Server{TLSConfig: cfg}, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute,
		TLSConfig: cfg}
	addr := serveTest(t, s)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for range 2 {
		io.WriteString(c, fastGet)
		readAnswer(t, c)
	}
	io.WriteString(c, fastGet+fastGet+fastGet)
	if got := readAnswers(t, c, 3); strings.Count(got, "HTTP/1.1 200 OK\r\n") != 3 {
		t.Fatalf("answers %q", got)
	}
	if n := h.served.Load(); n != 5 {
		t.Errorf("%d answers, want 5", n)
	}
}
