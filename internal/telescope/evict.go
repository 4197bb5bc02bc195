package telescope

import "time"

// EvictSampled deletes from m the least recently active of up to eight entries, and
// reports whether it deleted one. Go starts each map iteration at a random entry, so
// the eight are a random sample: an approximate LRU at constant cost (Redis's way),
// which keeps a flood of one-request spoofed sources from pushing out the sources
// that keep coming back.
func EvictSampled[K comparable, V any](m map[K]V, last func(V) time.Time) bool {
	var victim K
	var oldest time.Time
	n := 0
	for k, v := range m {
		if t := last(v); n == 0 || t.Before(oldest) {
			victim, oldest = k, t
		}
		if n++; n == 8 {
			break
		}
	}
	if n == 0 {
		return false
	}
	delete(m, victim)
	return true
}
