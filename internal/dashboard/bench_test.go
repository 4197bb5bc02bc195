package dashboard

import (
	"context"
	"net/http/httptest"
	"strconv"
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

// BenchmarkObserveFlood is the cost per request under a flood of distinct URLs
// from distinct sources, each evicting an entry of the top-k sketches.
func BenchmarkObserveFlood(b *testing.B) {
	d, err := New(Options{Server: benchServer{}})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	recs := make([]accesslog.Record, 4096)
	for i := range recs {
		u := "/flood/" + strconv.Itoa(i)
		recs[i] = accesslog.Record{Time: time.Now(), Duration: time.Millisecond, RemoteAddr: "192.0.2." + strconv.Itoa(i%250) + ":5000",
			Method: "GET", URI: u, Status: 404, Site: "default", Route: "/", Request: httptest.NewRequest("GET", u, nil)}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			d.Observe(&recs[i%len(recs)], httpsensor.Verdict{})
		}
	})
}
