package telescope

import (
	"cmp"
	"slices"
)

// serviceSlots is how many of a victim's ports get an exact packet count; the
// ports after them are counted together. A flood usually hits one to a few
// services; the cap keeps a victim's state small under a random-port flood.
const serviceSlots = 8

// serviceCounts counts backscatter packets by the victim's port (its service):
// the first serviceSlots distinct ports exactly, the rest together in other.
type serviceCounts struct {
	port  [serviceSlots]uint16
	n     [serviceSlots]uint32
	used  uint8
	other uint32
}

func (s *serviceCounts) add(p uint16) {
	for i := range s.used {
		if s.port[i] == p {
			s.n[i]++
			return
		}
	}
	if int(s.used) < serviceSlots {
		s.port[s.used], s.n[s.used] = p, 1
		s.used++
		return
	}
	s.other++
}

// Service is a port of a victim with the backscatter packets sent from it.
type Service struct {
	Port    uint16 `json:"port"`
	Packets uint64 `json:"packets"`
}

// list returns the counted ports, most packets first.
func (s *serviceCounts) list() []Service {
	out := make([]Service, s.used)
	for i := range out {
		out[i] = Service{Port: s.port[i], Packets: uint64(s.n[i])}
	}
	slices.SortFunc(out, func(a, b Service) int { return cmp.Or(cmp.Compare(b.Packets, a.Packets), cmp.Compare(a.Port, b.Port)) })
	return out
}
