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

// add records a port and returns the bytes the set grew by.
func (s *portSet) add(p uint16) int {
	if s.bits != nil {
		w, m := &s.bits[p>>6], uint64(1)<<(p&63)
		if *w&m == 0 {
			*w |= m
			s.n++
		}
		return 0
	}
	if slices.Contains(s.inl[:min(s.n, len(s.inl))], p) || slices.Contains(s.small, p) {
		return 0
	}
	before := s.bytes()
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
	return s.bytes() - before
}

func (s *portSet) len() int { return s.n }

// bytes is the heap memory the set holds beyond its own struct.
func (s *portSet) bytes() int {
	if s.bits != nil {
		return len(s.bits) * 8
	}
	return 2 * cap(s.small)
}

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

// hostSet counts the distinct targets of one source: exactly up to hostExactMax, in
// sorted slices that grow with the count (IPv4 targets as themselves, IPv6 targets as
// 64-bit hashes, which collide among 4096 with odds of 1 in 2^41), then as a
// HyperLogLog sketch. At the switch the IPv4 slice and the sketch are the same 16 KiB,
// so a source's memory grows with what it probes and never past that; one that
// probes one address, as each source of a spoofed flood does, allocates nothing.
type hostSet struct {
	inl  [2]uint32 // the first IPv4 targets, until v4 is allocated
	ninl uint8
	v4   []uint32 // sorted
	v6   []uint64 // sorted hashes
	hll  *hll
}

// hostExactMax is the most targets a hostSet counts exactly: a /20 swept.
const hostExactMax = 4096

// add records a target and returns the bytes the set grew by.
func (s *hostSet) add(a addr) int {
	if s.hll != nil {
		s.hll.add(a.hash())
		return 0
	}
	var grew int
	if a.is4() {
		v := a.v4()
		if s.v4 == nil {
			if slices.Contains(s.inl[:s.ninl], v) {
				return 0
			}
			if int(s.ninl) < len(s.inl) && s.v6 == nil {
				s.inl[s.ninl] = v
				s.ninl++
				return 0
			}
			s.v4 = append(make([]uint32, 0, 8), s.inl[:s.ninl]...)
			slices.Sort(s.v4)
			s.ninl = 0
			grew = 8 * 4
		}
		i, found := slices.BinarySearch(s.v4, v)
		if found {
			return grew
		}
		if s.count() == hostExactMax {
			return grew + s.toSketch(a)
		}
		var g int
		s.v4, g = insertAt(s.v4, i, v, hostExactMax)
		return grew + 4*g
	}
	h := a.hash()
	i, found := slices.BinarySearch(s.v6, h)
	if found {
		return 0
	}
	if s.count() == hostExactMax {
		return s.toSketch(a)
	}
	var g int
	s.v6, g = insertAt(s.v6, i, h, hostExactMax)
	return 8 * g
}

// toSketch moves the exact set into a sketch and adds a to it; it returns the change
// in bytes.
func (s *hostSet) toSketch(a addr) int {
	before := s.bytes()
	s.hll = new(hll)
	for _, v := range s.inl[:s.ninl] {
		s.hll.add(addr4(v).hash())
	}
	for _, v := range s.v4 {
		s.hll.add(addr4(v).hash())
	}
	for _, h := range s.v6 {
		s.hll.add(h)
	}
	s.hll.add(a.hash())
	s.inl, s.ninl, s.v4, s.v6 = [2]uint32{}, 0, nil, nil
	return s.bytes() - before
}

// insertAt inserts v at i, growing s by doubling up to limit elements so that a full
// set holds no slack; it returns the elements of capacity added.
func insertAt[T any](s []T, i int, v T, limit int) ([]T, int) {
	grew := 0
	if len(s) == cap(s) {
		n := make([]T, len(s), min(max(2*cap(s), 8), limit))
		copy(n, s)
		grew = cap(n) - cap(s)
		s = n
	}
	s = s[:len(s)+1]
	copy(s[i+1:], s[i:])
	s[i] = v
	return s, grew
}

// count returns the distinct targets, exact unless estimated says otherwise.
func (s *hostSet) count() uint64 {
	if s.hll != nil {
		return max(s.hll.estimate(), hostExactMax+1)
	}
	return uint64(int(s.ninl) + len(s.v4) + len(s.v6))
}

// estimated reports whether count is a sketch's estimate.
func (s *hostSet) estimated() bool { return s.hll != nil }

// bytes is the heap memory the set holds beyond its own struct.
func (s *hostSet) bytes() int {
	n := 4*cap(s.v4) + 8*cap(s.v6)
	if s.hll != nil {
		n += len(s.hll.reg)
	}
	return n
}

// hllP is the sketch's precision: 2^14 one-byte registers, a standard error of
// 1.04/sqrt(2^14) = 0.81%.
const hllP = 14

// hll is a HyperLogLog sketch (Flajolet et al. 2007) over pre-hashed 64-bit values,
// read with Ertl's improved estimator ("New cardinality estimation algorithms for
// HyperLogLog sketches", 2017), which needs neither HLL++'s bias tables nor a switch
// to linear counting to stay unbiased from a few values to billions.
type hll struct {
	reg [1 << hllP]uint8
}

func (h *hll) add(x uint64) {
	x = mix64(x)
	idx := x >> (64 - hllP)
	// The rank of the remaining 64-p bits, at most 64-p+1: the guard bit stops the count.
	rank := uint8(bits.LeadingZeros64(x<<hllP|1<<(hllP-1))) + 1
	if rank > h.reg[idx] {
		h.reg[idx] = rank
	}
}

func (h *hll) estimate() uint64 {
	const m = float64(1 << hllP)
	const q = 64 - hllP
	var c [q + 2]int
	for _, r := range h.reg {
		c[r]++
	}
	z := m * ertlTau(1-float64(c[q+1])/m)
	for k := q; k >= 1; k-- {
		z = 0.5 * (z + float64(c[k]))
	}
	z += m * ertlSigma(float64(c[0])/m)
	return uint64(m*m/(2*math.Ln2*z) + 0.5)
}

// ertlSigma and ertlTau are the series of Ertl's estimator (his algorithm 6), summed
// until the float64 sum stops changing.
func ertlSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		prev := z
		z += x * y
		y += y
		if z == prev {
			return z
		}
	}
}

func ertlTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if z == prev {
			return z / 3
		}
	}
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
		d.hll = new(hll)
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
