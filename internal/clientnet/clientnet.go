// Package clientnet names the network a client address belongs to: the unit of
// gantry's per-client limits (login attempts, spooled request bodies). One client
// commonly holds a whole IPv4 /24 or IPv6 /64 (an IPv6 host gets a /64 to itself),
// so a per-address limit would be no limit.
package clientnet

import (
	"net"
	"net/netip"
	"strings"
)

// Of is the /24 of an IPv4 address, the /64 of an IPv6 one; the zero Prefix for
// the zero Addr.
func Of(a netip.Addr) netip.Prefix { return prefix(a, 24, 64) }

// Wide is the /16 of an IPv4 address, the /48 of an IPv6 one: what one site or
// provider customer is given, for limits that holding many of Of's networks must
// not multiply.
func Wide(a netip.Addr) netip.Prefix { return prefix(a, 16, 48) }

// Host is one client machine: an IPv4 address itself, the /64 of an IPv6 one
// (which one host is given whole). It is the key of limits on what one client does
// per second, where sharing Of's /24 would let a neighbour's flood throttle
// everyone behind it, as nginx's limit_req keys on the address.
func Host(a netip.Addr) netip.Prefix { return prefix(a, 32, 64) }

// HostOfRemote is Host for an http.Request's RemoteAddr; the zero Prefix when it
// holds no address.
func HostOfRemote(remoteAddr string) netip.Prefix { return Host(parseRemote(remoteAddr)) }

// OfRemote is Of for an http.Request's RemoteAddr ("host:port"); the zero Prefix
// when it holds no address.
func OfRemote(remoteAddr string) netip.Prefix { return Of(parseRemote(remoteAddr)) }

// Remote is the address of an http.Request's RemoteAddr, IPv4-mapped IPv6 as
// IPv4; the zero Addr when it holds none.
func Remote(remoteAddr string) netip.Addr { return parseRemote(remoteAddr).Unmap() }

// parseRemote is the address of "host:port" or "host"; the zero Addr when there
// is none.
func parseRemote(remoteAddr string) netip.Addr {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a
}

var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48") // RFC 8215
)

func prefix(a netip.Addr, v4, v6 int) netip.Prefix {
	a = a.Unmap()
	bits := v6
	switch {
	case a.Is4():
		bits = v4
	case nat64.Contains(a) || nat64Local.Contains(a):
		// an IPv4 client translated to IPv6 (RFC 6052): its address is in the
		// last 32 bits, and the /64 is every IPv4 client at once
		bits = 96 + v4
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// Forwarded is the client of a request whose TCP peer is peer: behind a
// trusted proxy (trusted reports whether an address is one) the address its
// X-Forwarded-For names, otherwise peer itself, for a client can write the
// header as it likes. The list (every field value, in order) is read from the
// right, where each proxy appends the address it received from: the first
// address that is not a trusted proxy is the client. Everything left of it was
// written by the client or by proxies gantry does not trust and is never read;
// an element that is not a bare address ends the walk at the last trusted hop,
// so a malformed header can only name a proxy. IPv4-mapped IPv6 addresses are
// read as IPv4.
func Forwarded(peer netip.Addr, xff []string, trusted func(netip.Addr) bool) netip.Addr {
	peer = peer.Unmap()
	client := peer
	if !peer.IsValid() || !trusted(peer) {
		return client
	}
	for i := len(xff) - 1; i >= 0; i-- {
		for rest := xff[i]; rest != ""; {
			elem := rest
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				elem, rest = rest[j+1:], rest[:j]
			} else {
				rest = ""
			}
			elem = strings.TrimSpace(elem)
			if elem == "" {
				continue // "a,,b", a trailing comma: an empty element is no hop
			}
			a, err := netip.ParseAddr(elem)
			if err != nil || a.Zone() != "" {
				return client
			}
			client = a.Unmap()
			if !trusted(client) {
				return client
			}
		}
	}
	return client
}
