package dashboard

import (
	"strings"
	"testing"
	"time"

	"gantry/internal/server"
)

func TestNewNeedsServer(t *testing.T) {
	if _, err := New(Options{Server: nil}); err == nil {
		t.Fatal("New without server")
	}
}

func TestLatencyQuantiles(t *testing.T) {
	var w window
	for i := 0; i < 98; i++ {
		w.lat[latBucket(2*time.Millisecond)].Add(1)
	}
	w.lat[latBucket(300*time.Millisecond)].Add(2)
	w.classes[2].Add(100)
	rps, by, n5, p50, p99 := w.take(2)
	if rps != 50 || by["2xx"] != 50 || n5 != 0 {
		t.Fatalf("rps %v by %v", rps, by)
	}
	// buckets are 19% wide: the quantile is the bucket's upper bound
	if p50 < 2 || p50 > 2*1.19 || p99 < 300 || p99 > 300*1.19 {
		t.Fatalf("p50 %v p99 %v", p50, p99)
	}
	if rps, _, _, p50, _ := w.take(1); rps != 0 || p50 != 0 {
		t.Fatal("take does not reset")
	}
}

func TestAlerts(t *testing.T) {
	a := newAlerter()
	t0 := time.Unix(1700000000, 0)
	pool := func(restarts int) []server.PoolStatus {
		return []server.PoolStatus{{Site: "default", Route: "/", Kind: "wsgi", Workers: []server.WorkerStatus{{PID: 1, Restarts: restarts}}}}
	}
	kinds := func(as []Alert) string {
		var k []string
		for _, x := range as {
			k = append(k, x.Kind)
		}
		return strings.Join(k, ",")
	}
	// healthy traffic with a few 5xx: no alert
	for i := 0; i < 30; i++ {
		got := a.update(t0.Add(time.Duration(i)*time.Second), alertInput{requests: 10, errors5xx: uint64(i % 10 / 9), poll: true, pools: pool(0)})
		if len(got) != 0 {
			t.Fatalf("second %d: %v", i, got)
		}
	}
	// a burst of 5xx and a crash-looping pool
	var got []Alert
	for i := 30; i < 40; i++ {
		got = a.update(t0.Add(time.Duration(i)*time.Second), alertInput{requests: 20, errors5xx: 15, poll: true, pools: pool(i - 29)})
	}
	if kinds(got) != "5xx_burst,crash_loop" || !got[0].Since.Equal(t0.Add(32*time.Second)) {
		t.Fatalf("alerts = %+v", got)
	}
	// quiet again: after the windows pass, the alerts clear
	for i := 40; i < 400; i++ {
		got = a.update(t0.Add(time.Duration(i)*time.Second), alertInput{requests: 100, poll: true, pools: pool(10)})
	}
	if len(got) != 0 {
		t.Fatalf("alerts after recovery: %+v", got)
	}
}
