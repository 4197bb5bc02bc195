package server

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// BenchmarkTLSStatic is BenchmarkFastStatic over a TLS listener (TLS 1.3,
// HTTP/1.1 keep-alive), with the fast path and with net/http only: against
// BenchmarkFastStatic it gives what TLS costs, and between its cases what the
// fast path saves under TLS.
func BenchmarkTLSStatic(b *testing.B) {
	root := b.TempDir()
	body := strings.Repeat("x", 1024)
	if err := os.WriteFile(filepath.Join(root, "1k.txt"), []byte(body), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, fast := range []bool{true, false} {
		b.Run(fmt.Sprintf("fast_path=%v", fast), func(b *testing.B) {
			ts := startTLSServerServing(b, fmt.Sprintf("fast_path=%v\nhttp3=false\n", fast), fmt.Sprintf("[[site]]\nhosts=[\"localhost\"]\nroot=%q\n", root), Options{})
			peertest.WaitFor(b, 20*time.Second, "the certificate for localhost", func() bool { return ts.srv.Certs().HasCert("localhost") })
			pool := rootPool(b, filepath.Join(ts.storage, "ca", "root.pem"))
			conf := &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}}
			// The file's first request fills the static cache, and its connection
			// stays with net/http.
			resp, err := httpsClient(pool, false).Get("https://localhost:" + ts.tlsPort + "/1k.txt")
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			c, err := tls.Dial("tcp", ts.tls, conf)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET /1k.txt HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			buf := make([]byte, 8192)
			tail := []byte(body[:64])
			b.ReportAllocs()
			for b.Loop() {
				c.Write(req)
				got := 0
				for !bytes.HasSuffix(buf[:got], tail) {
					n, err := c.Read(buf[got:])
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
		})
	}
}
