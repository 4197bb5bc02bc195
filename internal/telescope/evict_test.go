package telescope

import (
	"testing"
	"time"
)

func TestEvictSampledKeepsTheActive(t *testing.T) {
	now := time.Now()
	m := map[int]time.Time{}
	for i := 0; i < 8; i++ {
		m[i] = now.Add(time.Duration(i) * time.Second)
	}
	if !EvictSampled(m, func(v time.Time) time.Time { return v }) {
		t.Fatal("nothing evicted")
	}
	if _, ok := m[0]; ok || len(m) != 7 {
		t.Errorf("with eight entries the oldest must go: %v", m)
	}
	if EvictSampled(map[int]time.Time{}, func(v time.Time) time.Time { return v }) {
		t.Error("evicted from an empty map")
	}
}
