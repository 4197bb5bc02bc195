//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation counts
// mean nothing under it: these tests are built without it only (CI runs them in
// its plain go test).

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
	if testing.Short() {
		t.Skip("allocation count needs warm connections")
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

// TestFastRequestAllocations: once a connection has seen its headers, a fast
// request allocates nothing.
func TestFastRequestAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count needs a warm connection")
	}
	h := &testHandler{body: []byte("hello")}
	_, addr := startTest(t, h)
	c := dial(t, addr)
	c.SetDeadline(time.Time{})
	req := []byte("GET /fast HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench/1\r\nAccept: */*\r\n\r\n")
	buf := make([]byte, 4096)
	roundTrip := func() {
		c.Write(req)
		got := 0
		for !bytes.HasSuffix(buf[:got], []byte("hello")) {
			n, err := c.Read(buf[got:])
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	}
	for range 10 {
		roundTrip()
	}
	if a := testing.AllocsPerRun(200, roundTrip); a >= 1 {
		t.Errorf("%.2f allocations per fast request", a)
	}
}
