package export

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkHTTPEvent is what an unsolicited request costs the goroutine serving
// it: queueing a row, or counting a drop once ClickHouse is away and the queue full.
func BenchmarkHTTPEvent(b *testing.B) {
	ev := HTTPEvent{Time: time.Now(), Source: netip.MustParseAddr("192.0.2.1"), Host: "example.com", Method: "GET",
		Path: "/.env", UserAgent: "zgrab/0.x", Rule: "dotenv", Category: "exploit", Status: 404}
	for _, bc := range []struct {
		name  string
		queue int
	}{{"queued", 1 << 30}, {"queue-full", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			tg, err := ParseTarget("http://127.0.0.1:1/", "", "")
			if err != nil {
				b.Fatal(err)
			}
			// Every and Batch past the run: nothing is sent while it is measured
			e := Start(Options{Target: tg, Queue: bc.queue, Batch: 1 << 30, Every: time.Hour})
			defer e.Close()
			e.HTTPEvent(ev)
			b.ReportAllocs()
			for b.Loop() {
				e.HTTPEvent(ev)
			}
		})
	}
}
