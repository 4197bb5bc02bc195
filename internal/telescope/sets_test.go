package telescope

import (
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
			for _, p := range tc.ports {
				s.add(p)
			}
			want := slices.Compact(slices.Sorted(slices.Values(tc.ports)))
			if got := s.all(); !slices.Equal(got, want) && len(want) > 0 {
				t.Errorf("all() = %v, want %v", got, want)
			}
			if s.len() != len(want) {
				t.Errorf("len() = %d, want %d", s.len(), len(want))
			}
		})
	}
}

func TestHostSetCount(t *testing.T) {
	for _, n := range []int{1, 25, 64, 65, 1000, 100000} {
		var s hostSet
		for i := range n {
			s.add(addr4(0x0a000000 + uint32(i)).hash())
			s.add(addr4(0x0a000000 + uint32(i)).hash()) // a repeat changes nothing
		}
		got := s.count()
		if n <= hostSmallMax && got != uint64(n) {
			t.Errorf("%d hosts counted %d; small sets are exact", n, got)
		}
		if lo, hi := float64(n)*0.93, float64(n)*1.07; float64(got) < lo || float64(got) > hi {
			t.Errorf("%d hosts counted %d", n, got)
		}
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
