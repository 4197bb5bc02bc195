package dashboard

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"gantry/internal/accesslog"
	"gantry/internal/server"
	"gantry/internal/telescope/httpsensor"
)

type benchServer struct{}

func (benchServer) Status() server.Status            { return server.Status{} }
func (benchServer) ConfigText() string               { return "" }
func (benchServer) Reload(ctx context.Context) error { return nil }

// BenchmarkObserve is the dashboard's cost per request (counters, histogram,
// Prometheus series, access log ring), from concurrent requests.
func BenchmarkObserve(b *testing.B) {
	d, err := New(Options{Server: benchServer{}})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	r := httptest.NewRequest("GET", "/index.html", nil)
	rec := &accesslog.Record{Time: time.Now(), Duration: time.Millisecond, RemoteAddr: "192.0.2.1:5000", Method: "GET",
		URI: "/index.html", Status: 200, Site: "default", Route: "/", Request: r}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d.Observe(rec, httpsensor.Verdict{})
		}
	})
}
