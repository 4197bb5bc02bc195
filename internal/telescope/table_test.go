package telescope

import (
	"math/rand/v2"
	"testing"
)

// TestTableMatchesMap: random inserts, lookups and removals leave the table holding
// exactly what a Go map would, with every key at the slab index it reports. Keys
// come from a small pool, so that the index fills to its load limit, probes wrap
// around its end and removals shift runs of colliding keys back.
func TestTableMatchesMap(t *testing.T) {
	tests := []struct {
		name string
		pool int // distinct keys
		ops  int
		v6   bool // every other key an IPv6 address
	}{
		{"a handful of keys, dense index", 12, 20_000, false},
		{"hundreds of keys, growing and shrinking", 700, 200_000, false},
		{"IPv6 and IPv4 keys of every protocol", 300, 100_000, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.pool)))
			keys := make([]flowKey, tc.pool)
			for i := range keys {
				k := flowKey{a: addr4(0xc6336400 + uint32(i)), proto: uint8(i % 4)}
				if tc.v6 && i%2 == 1 {
					k.a = addr{hi: 0x20010db8 << 32, lo: uint64(i)}
				}
				keys[i] = k
			}
			tb := newTable[int]()
			want := map[flowKey]int{} // key -> value stored with it
			for op := range tc.ops {
				k := keys[rng.IntN(len(keys))]
				i, ok := tb.find(k)
				v, in := want[k]
				if ok != in || ok && tb.vals[i] != v {
					t.Fatalf("op %d: find(%v) = %d, %v (value %d); want present %v, value %d", op, k, i, ok, tb.vals[i], in, v)
				}
				switch {
				case !ok && rng.IntN(3) > 0:
					i = tb.insert(k)
					tb.vals[i] = op
					want[k] = op
				case ok && rng.IntN(2) == 0:
					tb.remove(i)
					delete(want, k)
				}
			}
			if tb.len() != len(want) {
				t.Fatalf("table holds %d entries, want %d", tb.len(), len(want))
			}
			for i, k := range tb.keys {
				if j, ok := tb.find(k); !ok || j != i || tb.vals[i] != want[k] {
					t.Errorf("entry %d (%v): find = %d, %v; value %d, want %d", i, k, j, ok, tb.vals[i], want[k])
				}
			}
		})
	}
}
