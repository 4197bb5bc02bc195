package telescope

import (
	"encoding/binary"
	"net/netip"
)

// Test packet builders: just enough header writing to make every case the decoder and
// classifier must tell apart. Checksums are left zero; nothing here verifies them.

type tcpHdr struct {
	sport, dport uint16
	seq          uint32
	flags        uint8
	win          uint16
	opts         []byte
}

func (h tcpHdr) bytes() []byte {
	b := make([]byte, 20+len(h.opts))
	binary.BigEndian.PutUint16(b, h.sport)
	binary.BigEndian.PutUint16(b[2:], h.dport)
	binary.BigEndian.PutUint32(b[4:], h.seq)
	b[12] = uint8((20+len(h.opts))/4) << 4
	b[13] = h.flags
	binary.BigEndian.PutUint16(b[14:], h.win)
	copy(b[20:], h.opts)
	return b
}

func udpBytes(sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	copy(b[8:], payload)
	return b
}

func icmpBytes(typ, code uint8, body []byte) []byte {
	b := make([]byte, 8+len(body))
	b[0], b[1] = typ, code
	copy(b[8:], body)
	return b
}

type ip4Hdr struct {
	src, dst string
	proto    uint8
	ttl      uint8
	id       uint16
	frag     uint16 // flags and offset field
}

func (h ip4Hdr) packet(payload []byte) []byte {
	b := make([]byte, 20+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[4:], h.id)
	binary.BigEndian.PutUint16(b[6:], h.frag)
	b[8] = h.ttl
	if b[8] == 0 {
		b[8] = 50
	}
	b[9] = h.proto
	s, d := netip.MustParseAddr(h.src).As4(), netip.MustParseAddr(h.dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	copy(b[20:], payload)
	return b
}

func ip6Packet(src, dst string, next uint8, payload []byte) []byte {
	b := make([]byte, 40+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	b[6] = next
	b[7] = 60
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	copy(b[40:], payload)
	return b
}

// ether wraps an IP packet in an Ethernet II frame, with 802.1Q tags if vlans given.
func ether(ip []byte, vlans ...uint16) []byte {
	b := make([]byte, 12, 14+4*len(vlans)+len(ip))
	for _, v := range vlans {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, v)
	}
	et := uint16(0x0800)
	if ip[0]>>4 == 6 {
		et = 0x86dd
	}
	b = binary.BigEndian.AppendUint16(b, et)
	return append(b, ip...)
}

func tcp4(src, dst string, h tcpHdr) []byte {
	return ether(ip4Hdr{src: src, dst: dst, proto: protoTCP}.packet(h.bytes()))
}

func syn4(src, dst string, dport uint16) []byte {
	return tcp4(src, dst, tcpHdr{sport: 40000, dport: dport, seq: 12345, flags: flagSYN, win: 29200})
}
