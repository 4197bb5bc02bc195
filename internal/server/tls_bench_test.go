package server

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkTLSStatic is BenchmarkFastStatic over TLS 1.3 HTTP/1.1 keep-alive,
// served by net/http as the TLS listeners serve it (the fast path steps aside
// for TLS): against BenchmarkFastStatic's two cases it gives what TLS costs and
// what the fast path would save.
func BenchmarkTLSStatic(b *testing.B) {
	root := b.TempDir()
	body := strings.Repeat("x", 1024)
	if err := os.WriteFile(filepath.Join(root, "1k.txt"), []byte(body), 0o644); err != nil {
		b.Fatal(err)
	}
	srv, _, _ := startServer(b, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n[[site]]\nroot=%q\n", root))
	cfg, pool := testTLS(b)
	addr := serveTLSH2(b, srv, cfg)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
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
}
