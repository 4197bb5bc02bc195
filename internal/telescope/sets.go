package telescope

import (
	"math"
	"math/bits"
	"slices"
)

// portSet holds distinct ports: a few inline, then a slice, then a 8 KiB bitmap once a
// source has touched more ports than a linear search should scan. Most sources in a
// telescope touch one port, so most sets never allocate.
type portSet struct {
	inl   [4]uint16
	small []uint16
	bits  *[1024]uint64
	n     int
}

const portSmallMax = 64

func (s *portSet) add(p uint16) {
	if s.bits != nil {
		w, m := &s.bits[p>>6], uint64(1)<<(p&63)
		if *w&m == 0 {
			*w |= m
			s.n++
		}
		return
	}
	if slices.Contains(s.inl[:min(s.n, len(s.inl))], p) || slices.Contains(s.small, p) {
		return
	}
	switch {
	case s.n < len(s.inl):
		s.inl[s.n] = p
	case s.n < portSmallMax:
		s.small = append(s.small, p)
	default:
		old := s.all()
		s.bits = new([1024]uint64)
		for _, q := range old {
			s.bits[q>>6] |= 1 << (q & 63)
		}
		s.bits[p>>6] |= 1 << (p & 63)
		s.small = nil
	}
	s.n++
}

func (s *portSet) len() int { return s.n }

// all returns the ports in ascending order.
func (s *portSet) all() []uint16 {
	out := make([]uint16, 0, s.n)
	if s.bits != nil {
		for i, w := range s.bits {
			for w != 0 {
				b := bits.TrailingZeros64(w)
				out = append(out, uint16(i*64+b))
				w &= w - 1
			}
		}
		return out
	}
	out = append(out, s.inl[:min(s.n, len(s.inl))]...)
	out = append(out, s.small...)
	slices.Sort(out)
	return out
}

// hostSet counts distinct addresses: exactly for the first few (the thresholds that
// decide a scan's kind are small), then as a HyperLogLog sketch of 1 KiB, so that a
// source sweeping a /8 costs the same memory as one sweeping a /24.
type hostSet struct {
	inl   [2]uint64
	small []uint64
	hll   *hll
	n     int
}

const hostSmallMax = 64

func (s *hostSet) add(h uint64) {
	if s.hll != nil {
		s.hll.add(h)
		return
	}
	if slices.Contains(s.inl[:min(s.n, len(s.inl))], h) || slices.Contains(s.small, h) {
		return
	}
	switch {
	case s.n < len(s.inl):
		s.inl[s.n] = h
	case s.n < hostSmallMax:
		s.small = append(s.small, h)
	default:
		s.hll = newHLL(10)
		for _, q := range s.inl {
			s.hll.add(q)
		}
		for _, q := range s.small {
			s.hll.add(q)
		}
		s.hll.add(h)
		s.small = nil
	}
	s.n++
}

func (s *hostSet) count() uint64 {
	if s.hll != nil {
		return max(s.hll.estimate(), hostSmallMax+1)
	}
	return uint64(s.n)
}

// hll is a HyperLogLog sketch (Flajolet et al. 2007) over pre-hashed 64-bit values.
type hll struct {
	p   uint8
	reg []uint8
}

func newHLL(p uint8) *hll { return &hll{p: p, reg: make([]uint8, 1<<p)} }

func (h *hll) add(x uint64) {
	x = mix64(x)
	idx := x >> (64 - h.p)
	rank := uint8(bits.LeadingZeros64(x<<h.p|1<<(h.p-1))) + 1
	if rank > h.reg[idx] {
		h.reg[idx] = rank
	}
}

func (h *hll) estimate() uint64 {
	m := float64(len(h.reg))
	var sum float64
	zeros := 0
	for _, r := range h.reg {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	e := 0.7213 / (1 + 1.079/m) * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros)) // linear counting is exact-ish for small sets
	}
	return uint64(e + 0.5)
}

// distinctCounter counts distinct destination addresses for the telescope size:
// exactly up to distinctExactMax in an open-addressing set of 64-bit hashes (a Go map
// costs several times more per packet here), then with a 16 KiB sketch.
type distinctCounter struct {
	slots []uint64 // 0 = empty; hashes are forced non-zero
	n     int
	hll   *hll
}

const distinctExactMax = 1 << 16

func (d *distinctCounter) add(a addr) {
	h := a.hash() | 1
	if d.hll != nil {
		d.hll.add(h)
		return
	}
	if len(d.slots) == 0 {
		d.grow()
	}
	mask := uint64(len(d.slots) - 1)
	i := h & mask
	for ; d.slots[i] != 0; i = (i + 1) & mask {
		if d.slots[i] == h {
			return
		}
	}
	if d.n >= distinctExactMax {
		d.hll = newHLL(14)
		for _, v := range d.slots {
			if v != 0 {
				d.hll.add(v)
			}
		}
		d.hll.add(h)
		d.slots = nil
		return
	}
	d.slots[i] = h
	d.n++
	if d.n >= len(d.slots)/2 {
		d.grow()
	}
}

func (d *distinctCounter) grow() {
	old := d.slots
	d.slots = make([]uint64, max(1024, 2*len(old)))
	mask := uint64(len(d.slots) - 1)
	for _, v := range old {
		if v == 0 {
			continue
		}
		i := v & mask
		for d.slots[i] != 0 {
			i = (i + 1) & mask
		}
		d.slots[i] = v
	}
}

func (d *distinctCounter) count() uint64 {
	if d.hll != nil {
		return d.hll.estimate()
	}
	return uint64(d.n)
}
