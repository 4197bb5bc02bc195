package http1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// echoHandler answers with what it saw of the request: the id header, the
// query, the peer and the local address the context carries. Each is read
// twice, before and after a yield, so a state shared with another connection
// mid-request shows as a mismatch.
type echoHandler struct{ bad atomic.Int64 }

func (h *echoHandler) ServeFast(w *ResponseWriter, r *http.Request) bool {
	id, q, remote := r.Header.Get("X-Id"), r.URL.RawQuery, r.RemoteAddr
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	body := fmt.Sprintf("id=%s q=%s remote=%s local=%v", id, q, remote, local)
	if id != r.Header.Get("X-Id") || q != r.URL.RawQuery || remote != r.RemoteAddr {
		h.bad.Add(1)
	}
	w.Header()["Content-Length"] = []string{strconv.Itoa(len(body))}
	io.WriteString(w, body)
	return true
}

// TestParkedConnectionsSeeOnlyTheirOwn: many keep-alive connections that park
// and wake between requests, pipeline some, and are closed under the server
// (a ban) while others run, each see exactly their own requests: id, query,
// peer and local address; and Shutdown with parked and active connections
// leaves no connection behind. Released parked connections come back on a
// new descriptor each time; kept ones are the ones a ban can close.
func TestParkedConnectionsSeeOnlyTheirOwn(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(map[bool]string{false: "released", true: "kept"}[keep], func(t *testing.T) {
			testParkedSeeOnlyTheirOwn(t, keep)
		})
	}
}

func testParkedSeeOnlyTheirOwn(t *testing.T, keep bool) {
	const conns, rounds = 40, 30
	h := &echoHandler{}
	s := &Server{Handler: h, Fallback: &http.Server{}, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute,
		ParkAfter: time.Millisecond, KeepParkedConns: keep, reapEveryD: 5 * time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &closingListener{Listener: ln}
	go s.Serve(cl)
	addr := ln.Addr().String()

	var wg sync.WaitGroup
	var answered, cut atomic.Int64
	errs := make(chan error, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(c)
			for j := 0; j < rounds; j++ {
				pipe := 1 + (i+j)%3
				var req strings.Builder
				for k := range pipe {
					id := fmt.Sprintf("c%d-r%d-p%d", i, j, k)
					fmt.Fprintf(&req, "GET /fast?%s HTTP/1.1\r\nHost: x\r\nX-Id: %s\r\nX-Pad-%d: %s\r\n\r\n", id, id, i, strings.Repeat("z", i*7))
				}
				if _, err := io.WriteString(c, req.String()); err != nil {
					cut.Add(1)
					return
				}
				for k := range pipe {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						cut.Add(1) // closed under the server
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					id := fmt.Sprintf("c%d-r%d-p%d", i, j, k)
					want := fmt.Sprintf("id=%s q=%s remote=%s local=%s", id, id, c.LocalAddr(), c.RemoteAddr())
					if string(b) != want {
						errs <- fmt.Errorf("connection %d saw %q, want %q", i, b, want)
						return
					}
					answered.Add(1)
				}
				if j%4 == 3 {
					// Wait until something is parked, so that this connection's
					// next request comes after a park more often than not.
					peertest.WaitFor(t, 0, "a parked connection", func() bool { return s.Parked() > 0 })
				}
			}
		}()
	}
	// Close a few connections under the server while the rest go on.
	peertest.WaitFor(t, 0, "connections accepted", func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return len(cl.conns) >= conns
	})
	cl.mu.Lock()
	for i := 0; i < len(cl.conns); i += 9 {
		cl.conns[i].Close()
	}
	cl.mu.Unlock()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := h.bad.Load(); n != 0 {
		t.Errorf("%d requests changed under their handler", n)
	}
	// Connections closed under the server may have finished their rounds
	// first: only the answers are counted on.
	if answered.Load() == 0 {
		t.Errorf("no answer (%d connections cut)", cut.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := tracked(s); n != 0 {
		t.Errorf("%d connections tracked after Shutdown", n)
	}
}

// openFDs is the number of descriptors the process holds.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestParkedMassClose: thousands of parked connections closed by their clients
// at once are all let go: no connection tracked or parked, no goroutine and no
// descriptor left behind.
func TestParkedMassClose(t *testing.T) {
	if testing.Short() {
		t.Skip("opens thousands of connections")
	}
	const n = 4000
	h := &testHandler{body: []byte("hello")}
	s, addr := startParking(t, h, time.Minute, time.Minute)
	warm := dialRaw(t, addr)
	warm.get(t, "hello")
	peertest.WaitFor(t, 0, "the first connection parked", func() bool { return s.Parked() == 1 })
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	clients := make([]rawClient, n)
	for i := range clients {
		clients[i] = dialRaw(t, addr)
		clients[i].get(t, "hello")
	}
	peertest.WaitFor(t, 0, "every connection parked", func() bool { return s.Parked() == n+1 })
	for _, c := range clients {
		c.close()
	}
	peertest.WaitFor(t, 0, "the closed connections let go", func() bool { return s.Parked() == 1 && tracked(s) == 1 })
	peertest.WaitFor(t, 0, "goroutines and descriptors back", func() bool {
		return runtime.NumGoroutine() <= goroutines && openFDs(t) <= fds
	})
	// The survivor is served still.
	warm.get(t, "hello")
	warm.close()
}

// TestShutdownWhileParkingAndWaking: Shutdown while connections are being
// answered, parked and woken finishes, leaves none tracked or parked, and
// every answer a client got was its own.
func TestShutdownWhileParkingAndWaking(t *testing.T) {
	const conns = 30
	h := &echoHandler{}
	s := &Server{Handler: h, Fallback: &http.Server{}, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute,
		ParkAfter: time.Millisecond}
	addr := serveTest(t, s)
	var wg sync.WaitGroup
	var answered atomic.Int64
	errs := make(chan error, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return // refused: Shutdown closed the listener
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(c)
			for j := 0; ; j++ {
				id := fmt.Sprintf("c%d-r%d", i, j)
				if _, err := fmt.Fprintf(c, "GET /fast?%s HTTP/1.1\r\nHost: x\r\nX-Id: %s\r\n\r\n", id, id); err != nil {
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					return // closed by Shutdown
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := fmt.Sprintf("id=%s q=%s remote=%s local=%s", id, id, c.LocalAddr(), c.RemoteAddr())
				if string(b) != want {
					errs <- fmt.Errorf("connection %d saw %q, want %q", i, b, want)
					return
				}
				answered.Add(1)
				if resp.Close {
					return
				}
			}
		}()
	}
	peertest.WaitFor(t, 0, "requests answered and connections parked", func() bool {
		return answered.Load() > 10*conns && s.Parked() > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n, p := tracked(s), s.Parked(); n != 0 || p != 0 {
		t.Errorf("after Shutdown: %d connections tracked, %d parked", n, p)
	}
}

// fdOf is the descriptor number of an accepted connection.
func fdOf(t *testing.T, nc net.Conn) int {
	t.Helper()
	var fd int
	raw, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(f uintptr) { fd = int(f) })
	return fd
}

// gatedListener accepts one connection per value sent on next, and keeps them.
type gatedListener struct {
	closingListener
	next chan struct{}
}

func (l *gatedListener) Accept() (net.Conn, error) {
	<-l.next
	return l.closingListener.Accept()
}

// TestParkedDescriptorReused: a parked connection closed under the parker (a
// ban) frees its descriptor number, which the next accepted socket takes; the
// parker lets the old connection go without touching the new one, which parks,
// wakes and is answered on the same number.
func TestParkedDescriptorReused(t *testing.T) {
	h := &testHandler{body: []byte("hello")}
	s := &Server{Handler: h, Fallback: &http.Server{}, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Hour,
		ParkAfter: time.Millisecond, KeepParkedConns: true, reapEveryD: 5 * time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := &gatedListener{closingListener: closingListener{Listener: ln}, next: make(chan struct{}, 2)}
	go s.Serve(gl)
	t.Cleanup(func() {
		close(gl.next)
		s.Shutdown(context.Background())
	})
	addr := ln.Addr().String()
	gl.next <- struct{}{}
	a := dial(t, addr)
	io.WriteString(a, fastGet)
	readAnswer(t, a)
	peertest.WaitFor(t, 0, "the first connection parked", func() bool { return s.Parked() == 1 })
	// b waits in the listen queue while a's descriptor is closed under the
	// parker; its accept then takes the lowest free number, a's.
	b := dial(t, addr)
	gl.mu.Lock()
	old := fdOf(t, gl.conns[0])
	gl.conns[0].Close()
	gl.mu.Unlock()
	gl.next <- struct{}{}
	io.WriteString(b, fastGet)
	readAnswer(t, b)
	gl.mu.Lock()
	if got := fdOf(t, gl.conns[1]); got != old {
		t.Fatalf("the new socket is descriptor %d, want the closed one's %d", got, old)
	}
	gl.mu.Unlock()
	peertest.WaitFor(t, 0, "the closed connection let go, the new one parked", func() bool {
		return s.Parked() == 1 && tracked(s) == 1
	})
	for range 3 {
		io.WriteString(b, fastGet)
		if got := readAnswer(t, b); !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") {
			t.Fatalf("answer on the reused descriptor %q", got)
		}
		peertest.WaitFor(t, 0, "the new connection parked again", func() bool { return s.Parked() == 1 })
	}
	expectClosed(t, a, "closed under the parker")
}

// TestParkedHalfClose: a parked connection whose client sends its last request
// and half-closes is answered, then closed and let go.
func TestParkedHalfClose(t *testing.T) {
	h := &testHandler{body: []byte("hello")}
	s, addr := startParking(t, h, time.Hour, time.Minute)
	c := dial(t, addr)
	io.WriteString(c, fastGet)
	readAnswer(t, c)
	peertest.WaitFor(t, 0, "the connection parked", func() bool { return s.Parked() == 1 })
	io.WriteString(c, fastGet)
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(got), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(string(got), "hello") {
		t.Fatalf("after a half-close: %q, %v; want the answer then EOF", got, err)
	}
	peertest.WaitFor(t, 0, "the connection let go", func() bool { return s.Parked() == 0 && tracked(s) == 0 })
}

// TestShutdownParkedAndActive: Shutdown closes a parked connection at once but
// lets a request being answered finish, whole, before it returns.
func TestShutdownParkedAndActive(t *testing.T) {
	h := &testHandler{body: []byte("hello"), entered: make(chan struct{}, 1), release: make(chan struct{})}
	s, addr := startParking(t, h, time.Hour, time.Minute)
	parked := dial(t, addr)
	io.WriteString(parked, fastGet)
	<-h.entered
	h.release <- struct{}{}
	readAnswer(t, parked)
	peertest.WaitFor(t, 0, "the connection parked", func() bool { return s.Parked() == 1 })
	active := dial(t, addr)
	io.WriteString(active, fastGet)
	<-h.entered
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	expectClosed(t, parked, "parked at Shutdown")
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a request being answered", err)
	default:
	}
	h.release <- struct{}{}
	got, err := io.ReadAll(active)
	if err != nil || !strings.HasPrefix(string(got), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(string(got), "hello") {
		t.Fatalf("the active request at Shutdown: %q, %v", got, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestWatchAfterPark: a slow request that comes on a connection woken from
// the parker still learns that its client left (the idle wait's deadline does
// not end the watch's read).
func TestWatchAfterPark(t *testing.T) {
	g := blockingGateway{ended: make(chan error, 1)}
	s := &Server{Handler: g, Fallback: &http.Server{}, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute,
		WatchAfter: time.Nanosecond, ParkAfter: time.Millisecond}
	c := dial(t, serveTest(t, s))
	io.WriteString(c, "GET /quick HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	peertest.WaitFor(t, 0, "the connection parked", func() bool { return s.Parked() == 1 })
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
