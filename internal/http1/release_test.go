package http1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// wrappingListener wraps every accepted connection, as a listener's
// instrumentation does, and counts the wrappers closed.
type wrappingListener struct {
	net.Listener
	closed atomic.Int64
}

func (l *wrappingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *wrappingListener
	once atomic.Bool
}

func (c *countedConn) NetConn() net.Conn { return c.Conn }

func (c *countedConn) Close() error {
	if c.once.CompareAndSwap(false, true) {
		c.l.closed.Add(1)
	}
	return c.Conn.Close()
}

// echoGet asks echoHandler for id and checks that the answer names the
// client's own addresses.
func echoGet(t *testing.T, c net.Conn, br *bufio.Reader, id string) {
	t.Helper()
	fmt.Fprintf(c, "GET /fast?%s HTTP/1.1\r\nHost: x\r\nX-Id: %s\r\n\r\n", id, id)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("id=%s q=%s remote=%s local=%s", id, id, c.LocalAddr(), c.RemoteAddr()); string(b) != want {
		t.Fatalf("answer %q, want %q", b, want)
	}
}

// TestParkedReleased: a parked connection keeps one descriptor and no net.Conn
// (its listener's wrapper is closed), wakes as the same connection (its
// client's addresses, the next request answered), and leaves no descriptor
// behind when its client closes it.
func TestParkedReleased(t *testing.T) {
	const n = 20
	h := &echoHandler{}
	s := &Server{Handler: h, Fallback: &http.Server{}, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute,
		ParkAfter: time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := &wrappingListener{Listener: ln}
	go s.Serve(wl)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	// The parker's own descriptors (epoll, eventfd) come with the first park.
	warm := dial(t, ln.Addr().String())
	echoGet(t, warm, bufio.NewReader(warm), "warm")
	peertest.WaitFor(t, 0, "the first connection parked", func() bool { return s.Parked() == 1 })
	base := openFDs(t)

	clients := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range clients {
		clients[i] = dial(t, ln.Addr().String())
		readers[i] = bufio.NewReader(clients[i])
		echoGet(t, clients[i], readers[i], fmt.Sprintf("c%d-r0", i))
	}
	peertest.WaitFor(t, 0, "every connection parked", func() bool { return s.Parked() == n+1 })
	if got := wl.closed.Load(); got != n+1 {
		t.Errorf("%d listener connections closed with %d parked, want all", got, n+1)
	}
	// Each parked connection: its client's descriptor and one of the server's.
	if got := openFDs(t) - base; got != 2*n {
		t.Errorf("%d more descriptors with %d parked connections, want %d", got, n, 2*n)
	}
	for round := 1; round <= 2; round++ {
		for i, c := range clients {
			echoGet(t, c, readers[i], fmt.Sprintf("c%d-r%d", i, round))
		}
		peertest.WaitFor(t, 0, "every connection parked again", func() bool { return s.Parked() == n+1 })
	}
	if n := h.bad.Load(); n != 0 {
		t.Errorf("%d requests changed under their handler", n)
	}
	for _, c := range clients {
		c.Close()
	}
	peertest.WaitFor(t, 0, "the closed connections let go", func() bool { return tracked(s) == 1 && s.Parked() == 1 })
	peertest.WaitFor(t, 0, "their descriptors closed", func() bool { return openFDs(t) == base })
}

// TestIdleWaitMoves: a keep-alive connection idle past moveAfter waits on a
// goroutine of its own, not on the one that answered (whose stack grew), is
// answered from it, and is closed by Shutdown as an idle connection.
func TestIdleWaitMoves(t *testing.T) {
	h := &echoHandler{}
	s := &Server{Handler: h, Fallback: &http.Server{}, ReadHeaderTimeout: time.Minute, IdleTimeout: 2 * time.Hour,
		ParkAfter: time.Hour}
	addr := serveTest(t, s)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	echoGet(t, c, br, "first")
	moved := func() bool {
		buf := make([]byte, 1<<20)
		return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "created by gantry/internal/http1.(*conn).waitIdle")
	}
	peertest.WaitFor(t, 0, "the wait moved to a new goroutine", moved)
	echoGet(t, c, br, "second")
	peertest.WaitFor(t, 0, "the wait moved again", moved)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	expectClosed(t, c, "idle at Shutdown")
}

// TestCrowdedWaitsPark: when more connections wait on goroutines than
// crowdedWaits, those idle past moveAfter are parked without waiting out
// ParkAfter (an hour here), and are answered when they ask again.
func TestCrowdedWaitsPark(t *testing.T) {
	const n = crowdedWaits + 100
	h := &testHandler{body: []byte("hello")}
	s := &Server{Handler: h, Fallback: &http.Server{}, ReadHeaderTimeout: time.Minute, IdleTimeout: 2 * time.Hour,
		ParkAfter: time.Hour}
	addr := serveTest(t, s)
	clients := make([]rawClient, n)
	for i := range clients {
		clients[i] = dialRaw(t, addr)
		t.Cleanup(clients[i].close)
		clients[i].get(t, "hello")
	}
	peertest.WaitFor(t, 0, "the crowd beyond crowdedWaits parked", func() bool { return s.Parked() >= n-crowdedWaits })
	if p := s.Parked(); p == n {
		t.Errorf("all %d connections parked: the first crowdedWaits should wait out ParkAfter", p)
	}
	for _, c := range clients {
		c.get(t, "hello")
	}
}

// TestParkedClientReset: a client that resets its parked connection wakes it
// with a socket that has no peer any more; the connection is let go, and the
// server goes on serving others.
func TestParkedClientReset(t *testing.T) {
	const n = 50
	h := &testHandler{body: []byte("hello")}
	s, addr := startParking(t, h, time.Minute, time.Minute)
	base := -1
	for i := range n {
		c := dial(t, addr)
		io.WriteString(c, fastGet)
		readAnswer(t, c)
		peertest.WaitFor(t, 0, "the connection parked", func() bool { return s.Parked() == 1 })
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		peertest.WaitFor(t, 0, "the reset connection let go", func() bool { return tracked(s) == 0 && s.Parked() == 0 })
		if i == 0 {
			base = openFDs(t) // with the parker's own, opened at the first park
		}
	}
	c := dial(t, addr)
	io.WriteString(c, fastGet)
	if got := readAnswer(t, c); !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") {
		t.Fatalf("answer after the resets %q", got)
	}
	c.Close()
	peertest.WaitFor(t, 0, "no descriptor left behind", func() bool { return openFDs(t) == base })
}

// TestShutdownForcedWhileWaking: a released connection woken by its next
// request just as Shutdown's context ends (its goroutine still making its
// net.Conn, so the forced close cannot reach it) is closed by its goroutine,
// not served after Shutdown has returned.
func TestShutdownForcedWhileWaking(t *testing.T) {
	h := &testHandler{body: []byte("hello")}
	s, addr := startParking(t, h, time.Hour, time.Minute)
	c := dial(t, addr)
	io.WriteString(c, fastGet)
	readAnswer(t, c)
	peertest.WaitFor(t, 0, "the connection parked", func() bool { return s.Parked() == 1 })
	entered, proceed := make(chan struct{}), make(chan struct{})
	hook := func() {
		close(entered)
		<-proceed
	}
	attachHook.Store(&hook)
	t.Cleanup(func() { attachHook.Store(nil) })
	// Half a head: the goroutine would wait for the rest until ReadHeaderTimeout.
	io.WriteString(c, "GET /fast HTTP/1.1\r\n")
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Shutdown(ctx)
	close(proceed)
	expectClosed(t, c, "woken as Shutdown forced the connections closed")
	peertest.WaitFor(t, 0, "the connection untracked", func() bool { return tracked(s) == 0 })
}
