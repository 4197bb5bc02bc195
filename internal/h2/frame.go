package h2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame types (RFC 9113 §6).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	framePriority     = 0x2
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePushPromise  = 0x5
	framePing         = 0x6
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8
	frameContinuation = 0x9
)

// Flags.
const (
	flagEndStream  = 0x1
	flagAck        = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20
)

// Error codes (RFC 9113 §7).
const (
	errNo              = 0x0
	errProtocol        = 0x1
	errInternal        = 0x2
	errFlowControl     = 0x3
	errStreamClosed    = 0x5
	errFrameSize       = 0x6
	errRefusedStream   = 0x7
	errCancel          = 0x8
	errCompression     = 0x9
	errEnhanceYourCalm = 0xb
)

// Settings identifiers.
const (
	settingHeaderTableSize      = 0x1
	settingEnablePush           = 0x2
	settingMaxConcurrentStreams = 0x3
	settingInitialWindowSize    = 0x4
	settingMaxFrameSize         = 0x5
	settingMaxHeaderListSize    = 0x6
)

const (
	frameHeaderLen  = 9
	minMaxFrameSize = 1 << 14
	maxMaxFrameSize = 1<<24 - 1
	maxWindow       = 1<<31 - 1
	defaultWindow   = 65535
)

// preface is what every client sends first.
const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// frameHeader is the 9-byte header every frame starts with.
type frameHeader struct {
	length   uint32
	typ      uint8
	flags    uint8
	streamID uint32
}

func (h frameHeader) has(f uint8) bool { return h.flags&f != 0 }

func (h frameHeader) String() string {
	return fmt.Sprintf("type=%d flags=%#x stream=%d len=%d", h.typ, h.flags, h.streamID, h.length)
}

func parseFrameHeader(b []byte) frameHeader {
	return frameHeader{
		length:   uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]),
		typ:      b[3],
		flags:    b[4],
		streamID: binary.BigEndian.Uint32(b[5:9]) & (1<<31 - 1),
	}
}

// errFrameTooLarge is a frame longer than the SETTINGS_MAX_FRAME_SIZE we
// advertised: a connection error of type FRAME_SIZE_ERROR.
var errFrameTooLarge = errors.New("h2: frame larger than the maximum frame size")

// frameReader reads frames into one reused buffer: a frame's payload is valid
// until the next read.
type frameReader struct {
	r   io.Reader
	max uint32
	hdr [frameHeaderLen]byte
	buf []byte
}

// next reads the next frame. Payloads longer than max are not read: the
// connection is then beyond use anyway.
func (fr *frameReader) next() (frameHeader, []byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return frameHeader{}, nil, err
	}
	h := parseFrameHeader(fr.hdr[:])
	if h.length > fr.max {
		return h, nil, errFrameTooLarge
	}
	if uint32(cap(fr.buf)) < h.length {
		fr.buf = make([]byte, h.length)
	}
	p := fr.buf[:h.length]
	if _, err := io.ReadFull(fr.r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, err
	}
	return h, p, nil
}

// appendFrameHeader appends a frame header for a payload of length n.
func appendFrameHeader(b []byte, n int, typ, flags uint8, stream uint32) []byte {
	return append(b, byte(n>>16), byte(n>>8), byte(n), typ, flags,
		byte(stream>>24), byte(stream>>16), byte(stream>>8), byte(stream))
}

func appendUint32(b []byte, v uint32) []byte {
	return binary.BigEndian.AppendUint32(b, v)
}

func appendSettings(b []byte, ack bool, settings ...[2]uint32) []byte {
	var flags uint8
	if ack {
		flags = flagAck
	}
	b = appendFrameHeader(b, 6*len(settings), frameSettings, flags, 0)
	for _, s := range settings {
		b = binary.BigEndian.AppendUint16(b, uint16(s[0]))
		b = appendUint32(b, s[1])
	}
	return b
}

func appendPing(b []byte, ack bool, data []byte) []byte {
	var flags uint8
	if ack {
		flags = flagAck
	}
	b = appendFrameHeader(b, 8, framePing, flags, 0)
	return append(b, data[:8]...)
}

func appendWindowUpdate(b []byte, stream, incr uint32) []byte {
	b = appendFrameHeader(b, 4, frameWindowUpdate, 0, stream)
	return appendUint32(b, incr)
}

func appendRSTStream(b []byte, stream, code uint32) []byte {
	b = appendFrameHeader(b, 4, frameRSTStream, 0, stream)
	return appendUint32(b, code)
}

func appendGoAway(b []byte, last, code uint32, debug string) []byte {
	b = appendFrameHeader(b, 8+len(debug), frameGoAway, 0, 0)
	b = appendUint32(b, last)
	b = appendUint32(b, code)
	return append(b, debug...)
}

func appendData(b []byte, stream uint32, p []byte, end bool) []byte {
	var flags uint8
	if end {
		flags = flagEndStream
	}
	b = appendFrameHeader(b, len(p), frameData, flags, stream)
	return append(b, p...)
}

// appendHeaderBlock appends a header block as a HEADERS frame and as many
// CONTINUATION frames as maxFrame requires.
func appendHeaderBlock(b []byte, stream uint32, block []byte, end bool, maxFrame int) []byte {
	typ := uint8(frameHeaders)
	for first := true; first || len(block) > 0; first = false {
		n := min(len(block), maxFrame)
		var flags uint8
		if first && end {
			flags |= flagEndStream
		}
		if n == len(block) {
			flags |= flagEndHeaders
		}
		b = appendFrameHeader(b, n, typ, flags, stream)
		b = append(b, block[:n]...)
		block = block[n:]
		typ = frameContinuation
	}
	return b
}

// stripPadding removes the padding of a PADDED frame's payload.
func stripPadding(h frameHeader, p []byte) ([]byte, bool) {
	if !h.has(flagPadded) {
		return p, true
	}
	if len(p) < 1 {
		return nil, false
	}
	pad := int(p[0])
	p = p[1:]
	if pad > len(p) {
		return nil, false
	}
	return p[:len(p)-pad], true
}
