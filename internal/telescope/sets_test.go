package telescope

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestPortSet(t *testing.T) {
	cases := []struct {
		name  string
		ports []uint16
	}{
		{"empty", nil},
		{"inline with duplicates", []uint16{443, 80, 443, 22, 80}},
		{"slice", []uint16{9, 8, 7, 6, 5, 4, 3, 2, 1, 9, 1}},
		{"bitmap past 64 ports", func() []uint16 {
			var p []uint16
			for i := 65535; i > 64000; i -= 7 {
				p = append(p, uint16(i), uint16(i))
			}
			return append(p, 0)
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s portSet
			grew := 0
			for _, p := range tc.ports {
				grew += s.add(p)
			}
			want := slices.Compact(slices.Sorted(slices.Values(tc.ports)))
			if got := s.all(); !slices.Equal(got, want) && len(want) > 0 {
				t.Errorf("all() = %v, want %v", got, want)
			}
			if s.len() != len(want) {
				t.Errorf("len() = %d, want %d", s.len(), len(want))
			}
			if grew != s.bytes() {
				t.Errorf("add reported %d bytes of growth, the set holds %d", grew, s.bytes())
			}
		})
	}
}

// The boundary between exact counting and the sketch, at 4096 distinct targets.
func TestHostSetExactBoundary(t *testing.T) {
	v4 := func(i int) addr { return addr4(0x0a000000 + uint32(i)*7919) } // scattered, not in order
	v6 := func(i int) addr { return addr{hi: 0x20010db800000000, lo: uint64(i) * 0x9e3779b97f4a7c15} }
	cases := []struct {
		name      string
		distinct  int
		repeats   int // times each target is added
		target    func(int) addr
		estimated bool
	}{
		{"one target", 1, 1, v4, false},
		{"two targets inline", 2, 3, v4, false},
		{"4095 distinct", 4095, 1, v4, false},
		{"4096 distinct", 4096, 1, v4, false},
		{"4096 distinct, each three times", 4096, 3, v4, false},
		{"4097 distinct", 4097, 1, v4, true},
		{"4097 distinct, each twice", 4097, 2, v4, true},
		{"4096 distinct IPv6", 4096, 2, v6, false},
		{"4097 distinct IPv6", 4097, 1, v6, true},
		{"4096 mixed IPv4 and IPv6", 4096, 2, func(i int) addr {
			if i%2 == 0 {
				return v4(i)
			}
			return v6(i)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s hostSet
			grew := 0
			for range tc.repeats {
				for i := range tc.distinct {
					grew += s.add(tc.target(i))
				}
			}
			got := s.count()
			if s.estimated() != tc.estimated {
				t.Errorf("estimated = %v, want %v", s.estimated(), tc.estimated)
			}
			if !tc.estimated && got != uint64(tc.distinct) {
				t.Errorf("%d distinct targets counted %d; below 4097 the count is exact", tc.distinct, got)
			}
			if tc.estimated && (got <= hostExactMax || math.Abs(float64(got)-float64(tc.distinct)) > 0.03*float64(tc.distinct)) {
				t.Errorf("%d distinct targets estimated %d", tc.distinct, got)
			}
			if grew != s.bytes() {
				t.Errorf("add reported %d bytes of growth, the set holds %d", grew, s.bytes())
			}
			if s.bytes() > 8*hostExactMax {
				t.Errorf("the set holds %d bytes", s.bytes())
			}
		})
	}
}

// A source probing IPv4 targets holds at most 16 KiB, exact or sketched, and one
// probing a single target allocates nothing.
func TestHostSetMemory(t *testing.T) {
	var s hostSet
	if a := testing.AllocsPerRun(100, func() { s.add(addr4(0x0a000001)) }); a != 0 || s.bytes() != 0 {
		t.Errorf("one target: %.0f allocations, %d bytes", a, s.bytes())
	}
	for i := range 3 * hostExactMax {
		s.add(addr4(0x0a000000 + uint32(i)))
		if s.bytes() > 16<<10 {
			t.Fatalf("%d targets hold %d bytes", i+1, s.bytes())
		}
	}
}

// The sketch's estimate stays within 1% in the sense a sketch can promise: its root
// mean square relative error over random target sets of 10k to 1M is at most 1%
// (theory: 1.04/sqrt(2^14) = 0.81%), it has no bias, and no single estimate strays
// past 5 standard errors. The seed is random and logged: a failure can be replayed.
func TestHostSetEstimateError(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 17))
	sizes := []int{10_000, 30_000, 100_000, 300_000, 1_000_000}
	trials := 12
	if testing.Short() {
		sizes, trials = sizes[:3], 6
	}
	var sumSq, sum float64
	n := 0
	for _, size := range sizes {
		for range trials {
			var s hostSet
			base := rng.Uint32()
			step := rng.Uint32() | 1 // odd: size distinct addresses
			for i := range size {
				a := addr4(base + uint32(i)*step)
				s.add(a)
				if i%3 == 0 {
					s.add(a) // repeats change nothing
				}
			}
			if !s.estimated() {
				t.Fatalf("%d targets not marked estimated", size)
			}
			rel := (float64(s.count()) - float64(size)) / float64(size)
			if math.Abs(rel) > 5*0.0081 {
				t.Errorf("%d targets estimated %d (%.2f%%)", size, s.count(), 100*rel)
			}
			sum += rel
			sumSq += rel * rel
			n++
		}
	}
	rms, mean := math.Sqrt(sumSq/float64(n)), sum/float64(n)
	t.Logf("%d estimates: rms error %.3f%%, mean %.3f%%", n, 100*rms, 100*mean)
	if rms > 0.01 {
		t.Errorf("rms relative error %.3f%%, want at most 1%%", 100*rms)
	}
	if math.Abs(mean) > 4*0.0081/math.Sqrt(float64(n)) {
		t.Errorf("estimates biased by %.3f%%", 100*mean)
	}
}

func TestDistinctCounter(t *testing.T) {
	for _, n := range []int{0, 1, 512, distinctExactMax, 3 * distinctExactMax} {
		var d distinctCounter
		for i := range n {
			d.add(addr4(0xc0000000 + uint32(i)))
			d.add(addr4(0xc0000000 + uint32(i)))
		}
		got := d.count()
		if n <= distinctExactMax && got != uint64(n) {
			t.Errorf("%d destinations counted %d; want exact", n, got)
		}
		if lo, hi := float64(n)*0.97, float64(n)*1.03; float64(got) < lo || float64(got) > hi {
			t.Errorf("%d destinations counted %d", n, got)
		}
	}
}

// TestChosenCollisionsCounted sends an IPv6 scan whose destinations are chosen so
// that an unkeyed hash (mix64(hi*K ^ lo), as it was) maps every one of them to the
// same value: the target set must still count them, within the sketch's error.
func TestChosenCollisionsCounted(t *testing.T) {
	const k = 0x9e3779b97f4a7c15
	const size = 20_000
	var s hostSet
	var d distinctCounter
	for i := range uint64(size) {
		hi := 0x20010db800000000 | i  // a different /64 for each
		a := addr{hi: hi, lo: hi * k} // hi*K ^ lo == 0 for every one
		s.add(a)
		d.add(a)
	}
	if rel := (float64(s.count()) - size) / size; math.Abs(rel) > 5*0.0081 {
		t.Errorf("%d colliding targets counted %d", size, s.count())
	}
	if got := d.count(); got != size {
		t.Errorf("%d colliding sources counted %d", size, got)
	}
}
