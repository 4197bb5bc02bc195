package static

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing, so benchmarks measure the
// handler and not a recorder. Its header map is cleared, not reallocated, between
// requests: net/http allocates a fresh one per request either way.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }
func (w *discardWriter) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(io.Discard, r)
}

func benchServe(b *testing.B, opts Options, target string, headers ...string) {
	site := newSite(b)
	writeFile(b, filepath.Join(site, "1k.txt"), strings.Repeat("k", 1024))
	writeFile(b, filepath.Join(site, "100k.bin"), strings.Repeat("\x01", 100<<10))
	writeFile(b, filepath.Join(site, "1m.bin"), strings.Repeat("\x02", 1<<20))
	opts.Root = site
	h := newHandler(b, opts)
	r := httptest.NewRequest("GET", target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, r)
	if w.status >= 400 {
		b.Fatalf("status %d", w.status)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

func BenchmarkCached1K(b *testing.B)   { benchServe(b, Options{}, "/1k.txt") }
func BenchmarkCached100K(b *testing.B) { benchServe(b, Options{}, "/100k.bin") }
func BenchmarkCachedIndex(b *testing.B) {
	benchServe(b, Options{}, "/sub/")
}
func BenchmarkCachedGzipChoice(b *testing.B) {
	benchServe(b, Options{}, "/style.css", "Accept-Encoding", "gzip, deflate, br, zstd")
}
func BenchmarkCachedNotModified(b *testing.B) {
	benchServe(b, Options{}, "/1k.txt", "If-Modified-Since", "Mon, 01 Jan 2100 00:00:00 GMT")
}
func BenchmarkCachedRange(b *testing.B) {
	benchServe(b, Options{}, "/100k.bin", "Range", "bytes=1000-1999")
}
func BenchmarkDisk1K(b *testing.B) { benchServe(b, Options{CacheMaxBytes: -1}, "/1k.txt") }
func BenchmarkDisk1M(b *testing.B) { benchServe(b, Options{}, "/1m.bin") }

func BenchmarkCached1KParallel(b *testing.B) {
	site := newSite(b)
	writeFile(b, filepath.Join(site, "1k.txt"), strings.Repeat("k", 1024))
	h := newHandler(b, Options{Root: site})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest("GET", "/1k.txt", nil)
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, r)
		}
	})
}

// BenchmarkFileServer1K is the standard library's http.FileServer on the same
// file, the baseline the cache is meant to beat.
func BenchmarkFileServer1K(b *testing.B) {
	site := newSite(b)
	writeFile(b, filepath.Join(site, "1k.txt"), strings.Repeat("k", 1024))
	h := http.FileServer(http.Dir(site))
	r := httptest.NewRequest("GET", "/1k.txt", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

func BenchmarkParseRange(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		parseRange("bytes=0-99,1000-1999,-500", 1<<20, 100)
	}
}
