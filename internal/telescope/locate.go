package telescope

import "net/netip"

// Locate fills in the Location of every scan's source and every attack's victim
// with lookup (GeoIP databases, say); addresses it does not know stay empty.
func (r *Report) Locate(lookup func(netip.Addr) Location) {
	if lookup == nil {
		return
	}
	for i := range r.Scans {
		if a, err := netip.ParseAddr(r.Scans[i].Source); err == nil {
			r.Scans[i].Location = lookup(a)
		}
	}
	for i := range r.Attacks {
		if a, err := netip.ParseAddr(r.Attacks[i].Victim); err == nil {
			r.Attacks[i].Location = lookup(a)
		}
	}
}
