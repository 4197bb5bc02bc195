package telescope

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Link types (tcpdump.org/linktypes.html) the decoder understands.
const (
	LinkNull     = 0   // BSD loopback: 4-byte address family in host order
	LinkEthernet = 1   // Ethernet II, with 802.1Q / 802.1ad tags
	LinkRaw      = 101 // raw IPv4 or IPv6, version from the first nibble
	LinkRawAlt   = 12  // DLT_RAW as OpenBSD numbers it
	LinkLoop     = 108 // OpenBSD loopback: 4-byte address family in network order
	LinkSLL      = 113 // Linux cooked capture v1
	LinkIPv4     = 228
	LinkIPv6     = 229
	LinkSLL2     = 276 // Linux cooked capture v2
)

// maxRecord bounds one record's captured length: a larger value means the file is
// corrupt, and believing it would make the reader allocate whatever the file says.
const maxRecord = 1 << 18

// ErrNotCapture is returned when a file starts with neither a pcap nor a pcapng magic.
var ErrNotCapture = errors.New("not a pcap or pcapng capture")

// TruncatedError says where a capture stopped making sense: everything before Offset
// was read; the record that starts at Offset was cut short or is corrupt.
type TruncatedError struct {
	Offset int64
	Reason string
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("truncated capture at byte offset %d: %s", e.Offset, e.Reason)
}

// Record is one captured packet. Data is only valid until the next call to Next.
type Record struct {
	Timestamp int64 // Unix nanoseconds
	LinkType  uint32
	Data      []byte
	Offset    int64 // byte offset of the record in the file
}

// Reader reads pcap and pcapng files without allocating per packet: records are
// sliced out of one large buffer that is refilled in place.
type Reader struct {
	r    io.Reader
	buf  []byte
	pos  int   // next unread byte in buf
	end  int   // end of valid bytes in buf
	base int64 // file offset of buf[0]
	eof  bool

	ng      bool
	bo      byteOrder
	section bool // pcapng: a section header has set bo
	// classic pcap
	link  uint32
	nanos bool
	// pcapng: per-interface link type and timestamp unit, reset by each section
	ifaces []ngIface
}

type ngIface struct {
	link   uint32
	unitNs float64 // nanoseconds per timestamp tick; 0 means exactly 1000 (µs)
	div    uint64  // ticks per second when it is a power of ten, for exact integer math
	offset int64   // if_tsoffset, seconds
}

// byteOrder is a capture's byte order: a concrete type rather than a
// binary.ByteOrder, whose method calls through an interface cost as much as the
// rest of reading a record header.
type byteOrder struct{ big bool }

func (o byteOrder) Uint16(b []byte) uint16 {
	if o.big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (o byteOrder) Uint32(b []byte) uint32 {
	if o.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (o byteOrder) Uint64(b []byte) uint64 {
	if o.big {
		return binary.BigEndian.Uint64(b)
	}
	return binary.LittleEndian.Uint64(b)
}

// NewReader detects the format from the magic number and reads the file header.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{r: r, buf: make([]byte, 256<<10)}
	if err := rd.fill(24); err != nil && rd.end-rd.pos < 4 {
		return nil, ErrNotCapture
	}
	if rd.end-rd.pos < 4 {
		return nil, ErrNotCapture
	}
	magic := binary.LittleEndian.Uint32(rd.buf[rd.pos:])
	switch magic {
	case 0xa1b2c3d4, 0xa1b23c4d:
		rd.bo, rd.nanos = byteOrder{}, magic == 0xa1b23c4d
	case 0xd4c3b2a1, 0x4d3cb2a1:
		rd.bo, rd.nanos = byteOrder{big: true}, magic == 0x4d3cb2a1
	case 0x0a0d0d0a:
		rd.ng = true
		return rd, nil
	default:
		return nil, ErrNotCapture
	}
	if rd.end-rd.pos < 24 {
		return nil, &TruncatedError{Offset: 0, Reason: "file header shorter than 24 bytes"}
	}
	h := rd.buf[rd.pos : rd.pos+24]
	rd.link = rd.bo.Uint32(h[20:]) & 0x0fffffff // upper bits carry FCS length flags
	rd.pos += 24
	return rd, nil
}

// fill makes at least n bytes available at buf[pos:], compacting and growing the buffer
// as needed. It returns io.EOF (or the read error) when the input ends first.
func (rd *Reader) fill(n int) error {
	for rd.end-rd.pos < n {
		if rd.eof {
			return io.EOF
		}
		if rd.pos > 0 && (len(rd.buf)-rd.pos < n || rd.end == len(rd.buf)) {
			copy(rd.buf, rd.buf[rd.pos:rd.end])
			rd.base += int64(rd.pos)
			rd.end -= rd.pos
			rd.pos = 0
		}
		if n > len(rd.buf) {
			nb := make([]byte, n*2)
			copy(nb, rd.buf[:rd.end])
			rd.buf = nb
		}
		m, err := rd.r.Read(rd.buf[rd.end:])
		rd.end += m
		if err == io.EOF {
			rd.eof = true
		} else if err != nil {
			return err
		}
	}
	return nil
}

func (rd *Reader) offset() int64 { return rd.base + int64(rd.pos) }

// Next returns the next packet. It returns io.EOF at a clean end of file, and a
// *TruncatedError when the file ends inside a record or a record is corrupt.
func (rd *Reader) Next(rec *Record) error {
	if rd.ng {
		return rd.nextNG(rec)
	}
	off := rd.offset()
	if rd.end-rd.pos < 16 {
		if err := rd.fill(16); err == io.EOF {
			if rd.end == rd.pos {
				return io.EOF
			}
			return &TruncatedError{Offset: off, Reason: fmt.Sprintf("record header has %d of 16 bytes", rd.end-rd.pos)}
		} else if err != nil {
			return err
		}
	}
	h := rd.buf[rd.pos : rd.pos+16]
	sec := int64(rd.bo.Uint32(h))
	frac := int64(rd.bo.Uint32(h[4:]))
	capLen := rd.bo.Uint32(h[8:])
	if capLen > maxRecord {
		return &TruncatedError{Offset: off, Reason: fmt.Sprintf("record claims %d captured bytes", capLen)}
	}
	if rd.end-rd.pos < 16+int(capLen) {
		if err := rd.fill(16 + int(capLen)); err == io.EOF {
			return &TruncatedError{Offset: off, Reason: fmt.Sprintf("record has %d of %d captured bytes", rd.end-rd.pos-16, capLen)}
		} else if err != nil {
			return err
		}
	}
	if !rd.nanos {
		frac *= 1000
	}
	rec.Timestamp = sec*1e9 + frac
	rec.LinkType = rd.link
	rec.Offset = off
	rec.Data = rd.buf[rd.pos+16 : rd.pos+16+int(capLen)]
	rd.pos += 16 + int(capLen)
	return nil
}

func (rd *Reader) nextNG(rec *Record) error {
	for {
		off := rd.offset()
		if rd.end-rd.pos < 12 {
			if err := rd.fill(12); err == io.EOF {
				if rd.end == rd.pos {
					return io.EOF
				}
				return &TruncatedError{Offset: off, Reason: fmt.Sprintf("block header has %d of 12 bytes", rd.end-rd.pos)}
			} else if err != nil {
				return err
			}
		}
		b := rd.buf[rd.pos:]
		typ := binary.LittleEndian.Uint32(b)
		if typ == 0x0a0d0d0a {
			// A section header fixes the byte order of everything up to the next one.
			switch binary.LittleEndian.Uint32(b[8:]) {
			case 0x1a2b3c4d:
				rd.bo = byteOrder{}
			case 0x4d3c2b1a:
				rd.bo = byteOrder{big: true}
			default:
				return &TruncatedError{Offset: off, Reason: "section header with an unknown byte-order magic"}
			}
			rd.ifaces = rd.ifaces[:0]
			rd.section = true
		} else if !rd.section {
			return &TruncatedError{Offset: off, Reason: "block before any section header"}
		} else {
			typ = rd.bo.Uint32(b)
		}
		blen := rd.bo.Uint32(b[4:])
		if blen < 12 || blen%4 != 0 || blen > maxRecord+64 {
			return &TruncatedError{Offset: off, Reason: fmt.Sprintf("block of type %#x claims length %d", typ, blen)}
		}
		if rd.end-rd.pos < int(blen) {
			if err := rd.fill(int(blen)); err == io.EOF {
				return &TruncatedError{Offset: off, Reason: fmt.Sprintf("block has %d of %d bytes", rd.end-rd.pos, blen)}
			} else if err != nil {
				return err
			}
		}
		body := rd.buf[rd.pos+8 : rd.pos+int(blen)-4]
		rd.pos += int(blen)
		switch typ {
		case 1: // interface description
			if len(body) < 8 {
				return &TruncatedError{Offset: off, Reason: "short interface description block"}
			}
			ifc := ngIface{link: uint32(rd.bo.Uint16(body)), div: 1e6}
			rd.parseIfaceOptions(body[8:], &ifc)
			rd.ifaces = append(rd.ifaces, ifc)
		case 6, 2: // enhanced packet; obsolete packet block
			if len(body) < 20 {
				return &TruncatedError{Offset: off, Reason: "short packet block"}
			}
			var id uint32
			if typ == 6 {
				id = rd.bo.Uint32(body)
			} else {
				id = uint32(rd.bo.Uint16(body))
			}
			if int(id) >= len(rd.ifaces) {
				return &TruncatedError{Offset: off, Reason: fmt.Sprintf("packet on undeclared interface %d", id)}
			}
			ticks := uint64(rd.bo.Uint32(body[4:]))<<32 | uint64(rd.bo.Uint32(body[8:]))
			capLen := rd.bo.Uint32(body[12:])
			if uint64(capLen) > uint64(len(body)-20) {
				return &TruncatedError{Offset: off, Reason: fmt.Sprintf("packet block claims %d captured bytes in %d", capLen, len(body)-20)}
			}
			ifc := &rd.ifaces[id]
			rec.Timestamp = ifc.nanos(ticks)
			rec.LinkType = ifc.link
			rec.Offset = off
			rec.Data = body[20 : 20+capLen]
			return nil
		case 3: // simple packet: no timestamp, interface 0
			if len(body) < 4 || len(rd.ifaces) == 0 {
				return &TruncatedError{Offset: off, Reason: "simple packet block without an interface"}
			}
			orig := rd.bo.Uint32(body)
			data := body[4:]
			if uint32(len(data)) > orig {
				data = data[:orig]
			}
			rec.Timestamp = 0
			rec.LinkType = rd.ifaces[0].link
			rec.Offset = off
			rec.Data = data
			return nil
		}
	}
}

func (rd *Reader) parseIfaceOptions(opts []byte, ifc *ngIface) {
	for len(opts) >= 4 {
		code := rd.bo.Uint16(opts)
		l := int(rd.bo.Uint16(opts[2:]))
		if code == 0 || 4+l > len(opts) {
			return
		}
		v := opts[4 : 4+l]
		switch {
		case code == 9 && l >= 1: // if_tsresol
			r := v[0]
			if r&0x80 == 0 {
				ifc.div = 1
				for i := uint8(0); i < r && i < 19; i++ {
					ifc.div *= 10
				}
			} else {
				ifc.div = 0
				ifc.unitNs = 1e9 / float64(uint64(1)<<(r&0x7f))
			}
		case code == 14 && l >= 8: // if_tsoffset
			ifc.offset = int64(rd.bo.Uint64(v))
		}
		opts = opts[4+(l+3)&^3:]
	}
}

func (ifc *ngIface) nanos(ticks uint64) int64 {
	var ns int64
	switch {
	case ifc.div == 1e6: // the default, and 1e9: constant factors instead of divisions
		ns = int64(ticks) * 1e3
	case ifc.div == 1e9:
		ns = int64(ticks)
	case ifc.div == 0:
		ns = int64(float64(ticks) * ifc.unitNs)
	case ifc.div >= 1e9:
		ns = int64(ticks / (ifc.div / 1e9))
	default:
		ns = int64(ticks/ifc.div)*1e9 + int64(ticks%ifc.div)*int64(1e9/ifc.div)
	}
	return ns + ifc.offset*1e9
}
