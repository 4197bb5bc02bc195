package fastcgi

// The FastCGI 1.0 wire format: record headers, the fixed-size bodies of
// BEGIN_REQUEST and END_REQUEST, and name-value pairs. Nothing here does I/O
// beyond the io.Reader/bufio.Writer it is handed.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// recType is a record's type byte. Private and typed, as in net/http/fcgi, so that a
// record type can never be confused with a role, a status or a length.
type recType uint8

const (
	typeBeginRequest    recType = 1
	typeAbortRequest    recType = 2
	typeEndRequest      recType = 3
	typeParams          recType = 4
	typeStdin           recType = 5
	typeStdout          recType = 6
	typeStderr          recType = 7
	typeData            recType = 8
	typeGetValues       recType = 9
	typeGetValuesResult recType = 10
	typeUnknownType     recType = 11
)

func (t recType) String() string {
	names := [...]string{"", "BEGIN_REQUEST", "ABORT_REQUEST", "END_REQUEST", "PARAMS", "STDIN",
		"STDOUT", "STDERR", "DATA", "GET_VALUES", "GET_VALUES_RESULT", "UNKNOWN_TYPE"}
	if int(t) < len(names) && t != 0 {
		return names[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

const (
	version1   = 1
	headerLen  = 8
	maxContent = 65535

	roleResponder = 1
	flagKeepConn  = 1

	// protocolStatus values in END_REQUEST.
	statusRequestComplete = 0
	statusCantMpxConn     = 1
	statusOverloaded      = 2
	statusUnknownRole     = 3
)

// header is a record header.
type header struct {
	Version       uint8
	Type          recType
	ID            uint16
	ContentLength uint16
	PaddingLength uint8
}

var errBadVersion = errors.New("fastcgi: bad record version")

// appendHeader appends an 8-byte record header.
func appendHeader(b []byte, t recType, id uint16, contentLen, padLen int) []byte {
	return append(b, version1, byte(t), byte(id>>8), byte(id), byte(contentLen>>8), byte(contentLen), byte(padLen), 0)
}

// padding returns the padding that aligns a record's content to 8 bytes, as php-fpm
// and nginx do; receivers must accept any padding.
func padding(n int) int { return -n & 7 }

var zeros [8]byte

// appendRecord appends one complete record (header, content, padding). content must
// not exceed maxContent.
func appendRecord(b []byte, t recType, id uint16, content []byte) []byte {
	p := padding(len(content))
	b = appendHeader(b, t, id, len(content), p)
	b = append(b, content...)
	return append(b, zeros[:p]...)
}

// appendStream appends content as a sequence of records of type t, splitting at
// maxContent. It does not append the empty record that ends a stream.
func appendStream(b []byte, t recType, id uint16, content []byte) []byte {
	for len(content) > 0 {
		n := min(len(content), maxContent)
		b = appendRecord(b, t, id, content[:n])
		content = content[n:]
	}
	return b
}

// appendBeginRequest appends a BEGIN_REQUEST record for the responder role.
func appendBeginRequest(b []byte, id uint16, keepConn bool) []byte {
	var flags byte
	if keepConn {
		flags = flagKeepConn
	}
	return appendRecord(b, typeBeginRequest, id, []byte{0, roleResponder, flags, 0, 0, 0, 0, 0})
}

// appendLength appends a name-value length: one byte below 128, else four bytes with
// the top bit set.
func appendLength(b []byte, n int) []byte {
	if n < 128 {
		return append(b, byte(n))
	}
	return binary.BigEndian.AppendUint32(b, uint32(n)|1<<31)
}

// appendPair appends one name-value pair.
func appendPair(b []byte, name, value string) []byte {
	b = appendLength(b, len(name))
	b = appendLength(b, len(value))
	b = append(b, name...)
	return append(b, value...)
}

// readHeader reads a record header from r. buf must hold at least headerLen bytes.
func readHeader(r io.Reader, buf []byte) (header, error) {
	if _, err := io.ReadFull(r, buf[:headerLen]); err != nil {
		return header{}, err
	}
	h := header{
		Version:       buf[0],
		Type:          recType(buf[1]),
		ID:            binary.BigEndian.Uint16(buf[2:]),
		ContentLength: binary.BigEndian.Uint16(buf[4:]),
		PaddingLength: buf[6],
	}
	if h.Version != version1 {
		return h, fmt.Errorf("%w %d", errBadVersion, h.Version)
	}
	return h, nil
}

// endRequest is the body of an END_REQUEST record.
type endRequest struct {
	AppStatus      uint32
	ProtocolStatus uint8
}

func parseEndRequest(content []byte) (endRequest, error) {
	if len(content) < 8 {
		return endRequest{}, fmt.Errorf("fastcgi: END_REQUEST body of %d bytes, want 8", len(content))
	}
	return endRequest{AppStatus: binary.BigEndian.Uint32(content), ProtocolStatus: content[4]}, nil
}

var errShortPair = errors.New("fastcgi: truncated name-value pair")

// readLength decodes one name-value length from b.
func readLength(b []byte) (n int, rest []byte, err error) {
	if len(b) == 0 {
		return 0, nil, errShortPair
	}
	if b[0]&0x80 == 0 {
		return int(b[0]), b[1:], nil
	}
	if len(b) < 4 {
		return 0, nil, errShortPair
	}
	return int(binary.BigEndian.Uint32(b) &^ (1 << 31)), b[4:], nil
}

// parsePairs decodes name-value pairs, as found in GET_VALUES_RESULT and PARAMS.
// Lengths are checked against what is left, so a hostile length cannot make it
// allocate or read out of bounds.
func parsePairs(b []byte) ([][2]string, error) {
	var pairs [][2]string
	for len(b) > 0 {
		nl, rest, err := readLength(b)
		if err != nil {
			return pairs, err
		}
		vl, rest, err := readLength(rest)
		if err != nil {
			return pairs, err
		}
		if nl > len(rest) || vl > len(rest)-nl {
			return pairs, errShortPair
		}
		pairs = append(pairs, [2]string{string(rest[:nl]), string(rest[nl : nl+vl])})
		b = rest[nl+vl:]
	}
	return pairs, nil
}
