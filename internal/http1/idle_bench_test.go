package http1

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gantry/internal/peertest"
)

// rawClient is a client connection made with plain system calls, outside Go's
// runtime, so that a memory measurement counts the server's side alone.
type rawClient int

func dialRaw(tb testing.TB, addr string) rawClient {
	tb.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		tb.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tv := unix.Timeval{Sec: 10}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	err = unix.Connect(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()})
	if err == unix.EINTR {
		// The runtime's preemption signal: the connect goes on.
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		for {
			if _, err = unix.Poll(pfd, 10000); err != unix.EINTR {
				break
			}
		}
		if err == nil {
			var soErr int
			if soErr, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && soErr != 0 {
				err = unix.Errno(soErr)
			}
		}
	}
	if err != nil {
		tb.Fatal(err)
	}
	return rawClient(fd)
}

func (c rawClient) close() { unix.Close(int(c)) }

// get sends one fast request and reads its answer (testHandler's body ends it).
func (c rawClient) get(tb testing.TB, body string) {
	tb.Helper()
	req := []byte("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	for len(req) > 0 {
		n, err := unix.Write(int(c), req)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		req = req[n:]
	}
	var buf [1024]byte
	got := 0
	for !bytes.HasSuffix(buf[:got], []byte(body)) {
		n, err := unix.Read(int(c), buf[got:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			tb.Fatalf("read after %q: %d, %v", buf[:got], n, err)
		}
		got += n
	}
}

// idleConns counts the connections waiting for a later request.
func idleConns(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if st := c.state.Load(); st == stateIdle || st == stateParked {
			n++
		}
	}
	return n
}

func tracked(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func inUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// BenchmarkIdleConnMemory reports the server's memory (heap and stacks) per
// keep-alive connection that has been served once and waits for its next
// request: on its goroutine (before ParkAfter) and parked.
func BenchmarkIdleConnMemory(b *testing.B) {
	for _, bc := range []struct {
		name      string
		parkAfter time.Duration
		idle      func(*Server) int
	}{
		{"waiting", -1, idleConns},
		{"parked", time.Millisecond, (*Server).Parked},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const n = 1000
			h := &testHandler{body: []byte("hello")}
			s := &Server{Handler: h, Fallback: &http.Server{}, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute, ParkAfter: bc.parkAfter}
			addr := serveTest(b, s)
			// Warm the server (its pools, the fallback's goroutine, the parker)
			// before measuring.
			warm := dialRaw(b, addr)
			defer warm.close()
			warm.get(b, "hello")
			peertest.WaitFor(b, 0, "the first connection idle", func() bool { return bc.idle(s) == 1 })
			for b.Loop() {
				b.StopTimer()
				before := inUse()
				b.StartTimer()
				clients := make([]rawClient, n)
				for i := range clients {
					clients[i] = dialRaw(b, addr)
					clients[i].get(b, "hello")
				}
				b.StopTimer()
				peertest.WaitFor(b, 0, "every connection idle", func() bool { return bc.idle(s) == n+1 })
				after := inUse()
				b.ReportMetric(float64(int64(after)-int64(before))/n, "B/idle-conn")
				for _, c := range clients {
					c.close()
				}
				peertest.WaitFor(b, 0, "the connections closed", func() bool { return tracked(s) == 1 })
				b.StartTimer()
			}
		})
	}
}

// serveTest serves s on 127.0.0.1:0 until the test ends.
func serveTest(tb testing.TB, s *Server) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go s.Serve(ln)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return ln.Addr().String()
}
