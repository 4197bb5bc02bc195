package proxy

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkProxySmall measures a 13-byte response fetched directly from the
// upstream and through the proxy, alternating the two inside one run so that
// both see the same machine noise. ns/op is for one direct plus one proxied
// request; the ratio metric is proxied time / direct time.
//
//	go test -run XXX -bench ProxySmall -benchtime 5s ./internal/proxy/
func BenchmarkProxySmall(b *testing.B) {
	for _, tc := range []struct {
		name string
		up   func(testing.TB, http.Handler) string
	}{
		{"tcp", startUpstream},
		{"unix", startUnixUpstream},
	} {
		b.Run(tc.name, func(b *testing.B) {
			hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, "Hello, world\n")
			})
			up := tc.up(b, hello)
			f := startFront(b, Options{Upstream: up, Route: "/"})
			// The unix upstream is measured directly over TCP: the point is
			// what the proxy hop adds, not unix versus TCP.
			direct := up
			if tc.name == "unix" {
				direct = startUpstream(b, hello)
			}
			c := client(b)
			get := func(url string) time.Duration {
				start := time.Now()
				res, err := c.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Fatalf("status %d", res.StatusCode)
				}
				return time.Since(start)
			}
			var directNS, proxiedNS atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					directNS.Add(int64(get(direct + "/")))
					proxiedNS.Add(int64(get(f.URL + "/")))
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(proxiedNS.Load())/float64(directNS.Load()), "proxied/direct")
		})
	}
}
