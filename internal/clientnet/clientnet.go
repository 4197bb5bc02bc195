// Package clientnet names the network a client address belongs to: the unit of
// gantry's per-client limits (login attempts, spooled request bodies). One client
// commonly holds a whole IPv4 /24 or IPv6 /64 (an IPv6 host gets a /64 to itself),
// so a per-address limit would be no limit.
package clientnet

import (
	"net"
	"net/netip"
)

// Of is the /24 of an IPv4 address, the /64 of an IPv6 one; the zero Prefix for
// the zero Addr.
func Of(a netip.Addr) netip.Prefix { return prefix(a, 24, 64) }

// Wide is the /16 of an IPv4 address, the /48 of an IPv6 one: what one site or
// provider customer is given, for limits that holding many of Of's networks must
// not multiply.
func Wide(a netip.Addr) netip.Prefix { return prefix(a, 16, 48) }

// OfRemote is Of for an http.Request's RemoteAddr ("host:port"); the zero Prefix
// when it holds no address.
func OfRemote(remoteAddr string) netip.Prefix {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	return Of(a)
}

func prefix(a netip.Addr, v4, v6 int) netip.Prefix {
	a = a.Unmap()
	bits := v6
	if a.Is4() {
		bits = v4
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}
