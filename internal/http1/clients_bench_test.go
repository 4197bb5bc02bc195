package http1

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkFastRequestManyClients is BenchmarkFastRequest for keep-alive clients
// taking turns, each with its own 1 KB cookie, as browsers send: a request costs
// what its connection's strings cost to read again.
func BenchmarkFastRequestManyClients(b *testing.B) {
	for _, n := range []int{1, 32} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			h := &testHandler{body: bytes.Repeat([]byte("x"), 5)}
			s := &Server{Handler: h, Fallback: &http.Server{}, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}
			addr := serveTest(b, s)
			conns := make([]net.Conn, n)
			reqs := make([][]byte, n)
			for i := range conns {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				conns[i] = c
				reqs[i] = fmt.Appendf(nil, "GET /fast HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench/1\r\nCookie: session=%d%s\r\n\r\n", i, strings.Repeat("c", 1000))
			}
			buf := make([]byte, 4096)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c := conns[i%n]
				c.Write(reqs[i%n])
				i++
				got := 0
				for !bytes.HasSuffix(buf[:got], []byte("xxxxx")) {
					m, err := c.Read(buf[got:])
					if err != nil {
						b.Fatal(err)
					}
					got += m
				}
			}
		})
	}
}
