package dashboard

import (
	"testing"
	"time"
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
