package telescope

import (
	"math"
	"net/netip"
	"time"
)

// Options tunes the classifier. The zero value of any field means its default (see
// Defaults), so Options{} is Corsaro's and Zeek's published settings.
type Options struct {
	// Dark limits the analysis to traffic destined to these prefixes and gives the
	// telescope size n; else Size; else the number of distinct destinations seen.
	Dark []netip.Prefix
	Size int

	ScanHosts int           // distinct targets for a horizontal, strobe or block scan (25)
	ScanPorts int           // distinct ports for a vertical or block scan (15)
	ScanIdle  time.Duration // a scan ends after this long without a probe (10m)

	DoSPackets  int           // packets a victim vector needs to be an attack (25)
	DoSDuration time.Duration // duration a victim vector needs (60s)
	DoSPPM      int           // highest packets per 60 s window, sliding by 10 s (30)
	DoSIdle     time.Duration // a victim vector ends after this long without backscatter (300s)

	// MaxSources caps the scan sources and the DoS victims tracked at once (each
	// separately). Past it the least active of a random sample is evicted and counted.
	MaxSources int
	// MaxEvents caps the finished scans and attacks kept for the report (each).
	MaxEvents int
	// MaxSetBytes caps the memory of the scan sources' target and port sets together.
	// Past it the largest of a random sample of sources is ended early and counted
	// as evicted.
	MaxSetBytes int

	// OnScan and OnAttack, when set, are told of every scan and attack that meets
	// its thresholds as it ends (idle, or evicted): a live capture's export. They
	// run on the capture's goroutine with its lock held, so they must not block.
	OnScan   func(Scan)
	OnAttack func(Attack)
}

// Defaults returns o with every zero field set to its default.
func (o Options) Defaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.ScanHosts, 25)
	def(&o.ScanPorts, 15)
	defD(&o.ScanIdle, 10*time.Minute)
	def(&o.DoSPackets, 25)
	defD(&o.DoSDuration, 60*time.Second)
	def(&o.DoSPPM, 30)
	defD(&o.DoSIdle, 300*time.Second)
	def(&o.MaxSources, 1<<17)
	def(&o.MaxEvents, 10000)
	def(&o.MaxSetBytes, 256<<20)
	return o
}

// darkSet answers "is this destination in the telescope?" without allocating.
type darkSet struct {
	nets  []darkNet
	size4 float64 // IPv4 addresses covered
	size6 float64 // IPv6 addresses covered
}

type darkNet struct{ base, mask addr }

func newDarkSet(prefixes []netip.Prefix) darkSet {
	var d darkSet
	for _, p := range prefixes {
		p = p.Masked()
		bitsLen := p.Bits()
		if p.Addr().Is4() {
			bitsLen += 96
		}
		var m [16]byte
		for i := 0; i < bitsLen; i++ {
			m[i/8] |= 0x80 >> (i % 8)
		}
		d.nets = append(d.nets, darkNet{base: addrFrom(p.Addr()), mask: addr16(m[:])})
		if p.Addr().Is4() {
			d.size4 += math.Ldexp(1, 128-bitsLen)
		} else {
			d.size6 += math.Ldexp(1, 128-bitsLen)
		}
	}
	return d
}

func (d *darkSet) contains(a addr) bool {
	for _, n := range d.nets {
		if a.hi&n.mask.hi == n.base.hi && a.lo&n.mask.lo == n.base.lo {
			return true
		}
	}
	return false
}
