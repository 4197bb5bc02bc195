package fastcgi

import (
	"gantry/internal/peertest"

	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkPHPFPMHello measures the handler alone (no HTTP server) against a real
// php-fpm pool of 2 workers, with 32 requests at a time as bench/php.sh's wrk makes.
func BenchmarkPHPFPMHello(b *testing.B) {
	addr := peertest.PHPFPM(b, "")
	h, err := New(Options{Address: addr, Route: "*.php", Root: wwwRoot(b)}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Shutdown(ctx)
	})
	req := httptest.NewRequest("GET", "http://127.0.0.1/hello.php?x=1", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("User-Agent", "wrk")
	b.SetParallelism(16) // 16 × GOMAXPROCS (2) goroutines
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &benchWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			w.status, w.n = 0, 0
			h.ServeHTTP(w, req)
			if w.status != http.StatusOK || w.n != len("Hello, World!") {
				b.Errorf("status %d, %d body bytes", w.status, w.n)
				return
			}
		}
	})
}

// benchWriter is a ResponseWriter that keeps nothing, so that the benchmark measures
// the handler rather than a recorder.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(s int)   { w.status = s }
func (w *benchWriter) Flush()              {}
func (w *benchWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}
