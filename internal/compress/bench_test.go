package compress

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// htmlPage is about 100 KB of HTML that compresses as real pages do.
func htmlPage() []byte {
	rng := rand.New(rand.NewPCG(16, 16))
	words := strings.Fields("server request response header gantry static route proxy worker client the of and to in is that for it with as was on be by this are or from at")
	var b strings.Builder
	for b.Len() < 100<<10 {
		b.WriteString(`<p class="c">`)
		for range 20 + rng.IntN(40) {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		b.WriteString("</p>\n")
	}
	return []byte(b.String())
}

// BenchmarkServe measures a compressed 100 KB response per coding, encoders
// pooled: the steady state's allocations show in -benchmem.
func BenchmarkServe(b *testing.B) {
	body := htmlPage()
	for _, enc := range []string{"gzip", "zstd", "br"} {
		b.Run(enc, func(b *testing.B) {
			o := &Options{Compress: Setting{set: true, names: []string{enc}}}
			o.Provision(nil)
			h, _ := wrap(o, configEnv(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Write(body)
			}))
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Accept-Encoding", enc)
			w := &discardWriter{h: http.Header{}}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.n = 0
				h.ServeHTTP(w, req)
			}
			b.ReportMetric(float64(len(body))/float64(w.n), "ratio")
		})
	}
}

type discardWriter struct {
	h http.Header
	n int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
