package ban

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"gantry/internal/http1"
	"gantry/internal/peertest"
)

type helloFast struct{}

func (helloFast) ServeFast(w *http1.ResponseWriter, r *http.Request) bool {
	io.WriteString(w, "ok")
	return true
}

// TestBanClosesParkedConnection: a keep-alive connection the fast path has
// parked (no goroutine reads it) is closed by a ban of its source all the same.
func TestBanClosesParkedConnection(t *testing.T) {
	l, _ := newList(t, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http1.Server{Handler: helloFast{}, Fallback: &http.Server{}, ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout: time.Hour, ParkAfter: time.Millisecond, KeepParkedConns: true}
	go s.Serve(l.Listener(ln))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	peertest.WaitFor(t, 0, "the connection parked", func() bool { return s.Parked() == 1 })

	banLoopback(l)
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("parked connection after the ban: %v, want EOF or reset", err)
	}
	if n := l.OpenConns(); n != 0 {
		t.Errorf("%d connections still tracked", n)
	}
}
