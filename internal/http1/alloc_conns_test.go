package http1

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestFastRequestAllocationsManyConns: keep-alive connections taking turns, each
// repeating its own headers (a session cookie), allocate nothing per request
// once warm, as a single connection does: the pooled request state a
// connection takes was last used by another.
func TestFastRequestAllocationsManyConns(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation count needs warm connections and no race detector")
	}
	const n = 4
	h := &testHandler{body: []byte("hello")}
	_, addr := startTest(t, h)
	conns := make([]net.Conn, n)
	reqs := make([][]byte, n)
	for i := range conns {
		conns[i] = dial(t, addr)
		conns[i].SetDeadline(time.Time{})
		reqs[i] = fmt.Appendf(nil, "GET /fast HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench/1\r\nCookie: session=%032d\r\n\r\n", i)
	}
	buf := make([]byte, 4096)
	round := func() {
		for i, c := range conns {
			c.Write(reqs[i])
			got := 0
			for !bytes.HasSuffix(buf[:got], []byte("hello")) {
				m, err := c.Read(buf[got:])
				if err != nil {
					t.Fatal(err)
				}
				got += m
			}
		}
	}
	for range 10 {
		round()
	}
	a := testing.AllocsPerRun(200, round) / n
	if a >= 1 {
		t.Errorf("%.2f allocations per fast request on %d connections taking turns", a, n)
	}
}
