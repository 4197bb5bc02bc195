package telescope

import (
	"crypto/rand"
	"encoding/binary"
	"net/netip"
)

// addr is an IP address as two words: IPv4 in its IPv4-mapped IPv6 form, so that one
// comparable, hashable type serves both families without allocating.
type addr struct{ hi, lo uint64 }

func addr4(v uint32) addr { return addr{lo: 0xffff<<32 | uint64(v)} }

func addr16(b []byte) addr {
	return addr{hi: binary.BigEndian.Uint64(b), lo: binary.BigEndian.Uint64(b[8:])}
}

func (a addr) is4() bool  { return a.hi == 0 && a.lo>>32 == 0xffff }
func (a addr) v4() uint32 { return uint32(a.lo) }

// hash is keyed with a secret drawn at start: a sender choosing its (spoofed, or
// IPv6) source or destination addresses could otherwise make them collide at will,
// filling one chain of a target set and merging HyperLogLog entries so that a
// scan counts smaller than it is. mix64 is a bijection, so without the key a
// collision is as easy as solving one XOR.
func (a addr) hash() uint64 {
	hi := hashHi4 // IPv4: every packet hashes an address, and this half is fixed
	if a.hi != 0 {
		hi = mix64(a.hi ^ hashKey[0])
	}
	return mix64(hi ^ a.lo ^ hashKey[1])
}

var hashKey = func() (k [2]uint64) {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return [2]uint64{binary.LittleEndian.Uint64(b[:]), binary.LittleEndian.Uint64(b[8:])}
}()

// hashHi4 is mix64(0 ^ hashKey[0]), the first half of an IPv4 address's hash.
var hashHi4 = mix64(hashKey[0])

func (a addr) netip() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:], a.hi)
	binary.BigEndian.PutUint64(b[8:], a.lo)
	return netip.AddrFrom16(b).Unmap()
}

func addrFrom(ip netip.Addr) addr {
	b := ip.As16()
	return addr16(b[:])
}

// mix64 is the splitmix64 finalizer: a cheap hash with good avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// IP protocol numbers.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	protoSCTP   = 132
)

// SCTP chunk types (RFC 9260 §3.2) the classifier tells apart.
const (
	sctpInit       = 1
	sctpInitAck    = 2
	sctpAbort      = 6
	sctpCookieEcho = 10
)

// TCP flag bits.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagPSH = 0x08
	flagACK = 0x10
	flagURG = 0x20
)

// decodeResult says how far decoding got; anything but decodeOK is counted under
// "other" with the matching reason.
type decodeResult uint8

const (
	decodeOK decodeResult = iota
	decodeNotIP
	decodeMalformed
	decodeUnknownLink
)

// packet is the decoded form of one frame: every field the classifier looks at, in
// a fixed struct that is reused for every packet.
type packet struct {
	src, dst addr
	v6       bool
	proto    uint8 // transport protocol after IPv6 extension headers
	ipID     uint16
	ipLen    int  // IPv4 total length / IPv6 payload length + 40
	frag     bool // a non-first fragment, more-fragments, or the reserved flag
	firstFrg bool // more fragments follow, but this one holds the transport header

	hasPorts     bool // the transport header was long enough to hold ports
	sport, dport uint16
	tcpFlags     uint8
	seq          uint32
	win          uint16
	mssOnly      bool // TCP options are exactly one MSS option
	icmpType     uint8
	sctpChunk    uint8  // type of an SCTP packet's first chunk
	payload      []byte // UDP or TCP payload

	// The header an ICMP error quotes: the packet that provoked the error.
	inner      bool
	innerDst   addr
	innerProto uint8
	innerPorts bool
	innerSport uint16
	innerDport uint16
}

// decodeFrame decodes one captured frame of link type link into p.
func decodeFrame(link uint32, b []byte, p *packet) decodeResult {
	switch link {
	case LinkEthernet:
		if len(b) < 14 {
			return decodeMalformed
		}
		et := binary.BigEndian.Uint16(b[12:])
		b = b[14:]
		for et == 0x8100 || et == 0x88a8 || et == 0x9100 {
			if len(b) < 4 {
				return decodeMalformed
			}
			et = binary.BigEndian.Uint16(b[2:])
			b = b[4:]
		}
		return decodeEtherType(et, b, p)
	case LinkSLL:
		if len(b) < 16 {
			return decodeMalformed
		}
		return decodeEtherType(binary.BigEndian.Uint16(b[14:]), b[16:], p)
	case LinkSLL2:
		if len(b) < 20 {
			return decodeMalformed
		}
		return decodeEtherType(binary.BigEndian.Uint16(b), b[20:], p)
	case LinkRaw, LinkRawAlt, LinkIPv4, LinkIPv6:
		return decodeIP(b, p)
	case LinkNull, LinkLoop:
		if len(b) < 4 {
			return decodeMalformed
		}
		// The family is 2 for IPv4 and 24, 28 or 30 for IPv6 depending on the BSD, in
		// either byte order: the IP version nibble settles it.
		return decodeIP(b[4:], p)
	}
	return decodeUnknownLink
}

func decodeEtherType(et uint16, b []byte, p *packet) decodeResult {
	switch et {
	case 0x0800, 0x86dd:
		return decodeIP(b, p)
	}
	return decodeNotIP
}

func decodeIP(b []byte, p *packet) decodeResult {
	if len(b) < 1 {
		return decodeMalformed
	}
	p.inner = false
	p.hasPorts = false
	p.payload = nil
	p.tcpFlags = 0
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return decodeMalformed
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return decodeMalformed
		}
		p.v6 = false
		p.ipLen = int(binary.BigEndian.Uint16(b[2:]))
		p.ipID = binary.BigEndian.Uint16(b[4:])
		off := binary.BigEndian.Uint16(b[6:])
		p.frag = off&0x9fff != 0
		p.firstFrg = off&0x1fff == 0
		p.proto = b[9]
		p.src = addr4(binary.BigEndian.Uint32(b[12:]))
		p.dst = addr4(binary.BigEndian.Uint32(b[16:]))
		end := p.ipLen
		if end < ihl || end > len(b) {
			end = len(b) // snapped capture or a lying length: use what was captured
		}
		if !p.firstFrg {
			return decodeOK
		}
		decodeTransport(b[ihl:end], p)
		return decodeOK
	case 6:
		if len(b) < 40 {
			return decodeMalformed
		}
		p.v6 = true
		p.ipLen = int(binary.BigEndian.Uint16(b[4:])) + 40
		p.ipID = 0
		p.src = addr16(b[8:])
		p.dst = addr16(b[24:])
		p.frag = false
		p.firstFrg = true
		nh := b[6]
		rest := b[40:]
		if end := p.ipLen - 40; end < len(rest) {
			rest = rest[:end]
		}
	exts:
		for {
			switch nh {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if len(rest) < 8 {
					return decodeMalformed
				}
				l := (int(rest[1]) + 1) * 8
				if len(rest) < l {
					return decodeMalformed
				}
				nh, rest = rest[0], rest[l:]
				continue
			case 44: // fragment
				if len(rest) < 8 {
					return decodeMalformed
				}
				fo := binary.BigEndian.Uint16(rest[2:])
				// Like IPv4's filter, only a later fragment counts as one: the first
				// holds the transport header.
				p.frag = fo&0xfff8 != 0
				p.firstFrg = !p.frag
				nh, rest = rest[0], rest[8:]
				if !p.firstFrg {
					p.proto = nh
					return decodeOK
				}
				continue
			}
			break exts
		}
		p.proto = nh
		decodeTransport(rest, p)
		return decodeOK
	}
	return decodeNotIP
}

func decodeTransport(b []byte, p *packet) {
	switch p.proto {
	case protoTCP:
		if len(b) < 4 {
			return
		}
		p.sport = binary.BigEndian.Uint16(b)
		p.dport = binary.BigEndian.Uint16(b[2:])
		p.hasPorts = true
		if len(b) < 20 {
			p.seq, p.win, p.mssOnly = 0, 0, false
			if len(b) >= 14 {
				p.tcpFlags = b[13]
			}
			return
		}
		p.seq = binary.BigEndian.Uint32(b[4:])
		p.tcpFlags = b[13]
		p.win = binary.BigEndian.Uint16(b[14:])
		hl := int(b[12]>>4) * 4
		p.mssOnly = hl == 24 && len(b) >= 24 && b[20] == 2 && b[21] == 4
		if hl >= 20 && hl <= len(b) {
			p.payload = b[hl:]
		}
	case protoUDP:
		if len(b) < 4 {
			return
		}
		p.sport = binary.BigEndian.Uint16(b)
		p.dport = binary.BigEndian.Uint16(b[2:])
		p.hasPorts = true
		if len(b) >= 8 {
			p.payload = b[8:]
		}
	case protoSCTP:
		// The common header (ports, verification tag, checksum), then the first
		// chunk's type: without it there is nothing to classify.
		if len(b) < 13 {
			return
		}
		p.sport = binary.BigEndian.Uint16(b)
		p.dport = binary.BigEndian.Uint16(b[2:])
		p.sctpChunk = b[12]
		p.hasPorts = true
	case protoICMP, protoICMPv6:
		if len(b) < 2 {
			return
		}
		p.icmpType = b[0]
		p.hasPorts = true
		if isICMPError(p.proto, p.icmpType) && len(b) >= 8 {
			decodeInner(b[8:], p)
		}
	}
}

func isICMPError(proto, typ uint8) bool {
	if proto == protoICMP {
		switch typ {
		case 3, 4, 5, 11, 12:
			return true
		}
		return false
	}
	return typ >= 1 && typ <= 4
}

// decodeInner reads the quoted header in an ICMP error: usually all of the IP header
// but only the first 8 bytes of the transport header, which is enough for ports.
func decodeInner(b []byte, p *packet) {
	if len(b) < 1 {
		return
	}
	var rest []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return
		}
		p.innerProto = b[9]
		p.innerDst = addr4(binary.BigEndian.Uint32(b[16:]))
		rest = b[ihl:]
		if binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
			rest = nil
		}
	case 6:
		if len(b) < 40 {
			return
		}
		p.innerProto = b[6]
		p.innerDst = addr16(b[24:])
		rest = b[40:]
	default:
		return
	}
	p.inner = true
	p.innerPorts = false
	if (p.innerProto == protoTCP || p.innerProto == protoUDP || p.innerProto == protoSCTP) && len(rest) >= 4 {
		p.innerSport = binary.BigEndian.Uint16(rest)
		p.innerDport = binary.BigEndian.Uint16(rest[2:])
		p.innerPorts = true
	}
}
