package wsgi

// The wire format between gantry and its Python workers (worker.py documents it from
// the other side). Frames are a type byte, a little-endian uint32 payload length and
// the payload. The environ travels in Python's marshal format so that the worker
// rebuilds the dict with one call into C (marshal.loads); the response headers come
// back the same way (marshal.dumps), which also guarantees that every header is a
// (str, str) pair with no framing ambiguity.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"unicode/utf8"
)

// Frame types.
const (
	frameRequest   = 'R' // environ + complete body
	frameStream    = 'S' // environ; body follows in B frames
	frameBody      = 'B'
	frameBodyEnd   = 'E'
	frameBodyAbort = 'A'
	frameHead      = 'H'
	frameData      = 'D'
	frameFile      = 'F'
	frameEnd       = 'Z'
	frameError     = 'X'
)

const frameHeaderLen = 5

// maxControlFrame bounds the frames gantry holds in memory whole (H, F, X); body
// data (D) is streamed and has no such limit.
const maxControlFrame = 1 << 20

func appendFrameHeader(b []byte, kind byte, n int) []byte {
	return binary.LittleEndian.AppendUint32(append(b, kind), uint32(n))
}

// marshal type codes (CPython Python/marshal.c).
const (
	mNull       = '0'
	mNone       = 'N'
	mFalse      = 'F'
	mTrue       = 'T'
	mInt        = 'i'
	mDict       = '{'
	mTuple      = '('
	mSmallTuple = ')'
	mList       = '['
	mUnicode    = 'u'
	mInterned   = 't'
	mASCII      = 'a'
	mASCIIInt   = 'A'
	mShortASCII = 'z'
	mShortInt   = 'Z'
	mBytes      = 's'
	mRef        = 'r'
	mFlagRef    = 0x80
)

// appendMarshalStr appends s as a Python str. Bytes are Latin-1 code points, as PEP
// 3333 wants for the environ's "native strings" (a UTF-8 path arrives in PATH_INFO
// as its bytes, which Django and Werkzeug re-decode).
func appendMarshalStr(b []byte, s string) []byte {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		if len(s) < 256 {
			return append(append(b, mShortASCII, byte(len(s))), s...)
		}
		return append(binary.LittleEndian.AppendUint32(append(b, mASCII), uint32(len(s))), s...)
	}
	n := len(s)
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			n++
		}
	}
	b = binary.LittleEndian.AppendUint32(append(b, mUnicode), uint32(n))
	for i := 0; i < len(s); i++ {
		b = utf8.AppendRune(b, rune(s[i]))
	}
	return b
}

func appendMarshalBool(b []byte, v bool) []byte {
	if v {
		return append(b, mTrue)
	}
	return append(b, mFalse)
}

// errMarshal is a malformed marshal stream from a worker.
var errMarshal = errors.New("malformed marshal data")

// unmarshal decodes the subset of marshal a worker sends: str, tuple, list, None,
// with back-references.
type unmarshal struct {
	b    []byte
	refs []any
}

func (u *unmarshal) byte() (byte, error) {
	if len(u.b) < 1 {
		return 0, errMarshal
	}
	c := u.b[0]
	u.b = u.b[1:]
	return c, nil
}

func (u *unmarshal) n32() (int, error) {
	if len(u.b) < 4 {
		return 0, errMarshal
	}
	n := binary.LittleEndian.Uint32(u.b)
	u.b = u.b[4:]
	if n > uint32(len(u.b))+1<<20 || n > 1<<30 {
		return 0, errMarshal
	}
	return int(n), nil
}

// sized reads a 4-byte length and that many bytes.
func (u *unmarshal) sized() ([]byte, error) {
	n, err := u.n32()
	if err != nil {
		return nil, err
	}
	return u.bytes(n)
}

func (u *unmarshal) bytes(n int) ([]byte, error) {
	if n < 0 || n > len(u.b) {
		return nil, errMarshal
	}
	s := u.b[:n]
	u.b = u.b[n:]
	return s, nil
}

func (u *unmarshal) value(depth int) (any, error) {
	if depth > 8 {
		return nil, errMarshal
	}
	code, err := u.byte()
	if err != nil {
		return nil, err
	}
	flag := code&mFlagRef != 0
	code &^= mFlagRef
	ref := -1
	if flag {
		ref = len(u.refs)
		u.refs = append(u.refs, nil)
	}
	var v any
	switch code {
	case mNone:
		v = nil
	case mRef:
		i, err := u.n32()
		if err != nil {
			return nil, err
		}
		if i >= len(u.refs) || u.refs[i] == nil {
			return nil, errMarshal
		}
		return u.refs[i], nil
	case mShortASCII, mShortInt:
		n, err := u.byte()
		if err != nil {
			return nil, err
		}
		s, err := u.bytes(int(n))
		if err != nil {
			return nil, err
		}
		v = string(s)
	case mASCII, mASCIIInt, mUnicode, mInterned:
		s, err := u.sized()
		if err != nil {
			return nil, err
		}
		if code == mUnicode || code == mInterned {
			v = latin1(s)
			if v == nil {
				return nil, fmt.Errorf("%w: text outside Latin-1", errMarshal)
			}
		} else {
			v = string(s)
		}
	case mBytes:
		s, err := u.sized()
		if err != nil {
			return nil, err
		}
		v = append([]byte(nil), s...)
	case mSmallTuple, mTuple, mList:
		var n int
		if code == mSmallTuple {
			c, err := u.byte()
			if err != nil {
				return nil, err
			}
			n = int(c)
		} else if n, err = u.n32(); err != nil {
			return nil, err
		}
		if n > len(u.b) {
			return nil, errMarshal
		}
		items := make([]any, n)
		for i := range items {
			if items[i], err = u.value(depth + 1); err != nil {
				return nil, err
			}
		}
		v = items
	default:
		return nil, fmt.Errorf("%w: unexpected type %q", errMarshal, code)
	}
	if ref >= 0 {
		u.refs[ref] = v
	}
	return v, nil
}

// latin1 maps UTF-8 text whose code points are all below 256 to those bytes (HTTP
// header values are ISO-8859-1 in WSGI); nil if a code point is outside.
func latin1(s []byte) any {
	ascii := true
	for _, c := range s {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return string(s)
	}
	out := make([]byte, 0, len(s))
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		if r > 0xff || r == utf8.RuneError && size <= 1 {
			return nil
		}
		out = append(out, byte(r))
		s = s[size:]
	}
	return string(out)
}

// decodeHead decodes an H frame: marshal((status, [(name, value), ...])).
func decodeHead(p []byte) (status string, headers [][2]string, err error) {
	if status, headers, ok := decodeHeadFast(p); ok {
		return status, headers, nil
	}
	return decodeHeadAny(p)
}

// decodeHeadAny is decodeHead for any marshal encoding of the head.
func decodeHeadAny(p []byte) (status string, headers [][2]string, err error) {
	u := unmarshal{b: p}
	v, err := u.value(0)
	if err != nil {
		return "", nil, err
	}
	top, ok := v.([]any)
	if !ok || len(top) != 2 {
		return "", nil, errors.New("response head is not (status, headers)")
	}
	if status, ok = top[0].(string); !ok {
		return "", nil, errors.New("status is not a str")
	}
	list, ok := top[1].([]any)
	if !ok {
		return "", nil, errors.New("headers are not a list")
	}
	headers = make([][2]string, len(list))
	for i, h := range list {
		pair, ok := h.([]any)
		if !ok || len(pair) != 2 {
			return "", nil, fmt.Errorf("header %d is not a (name, value) tuple", i)
		}
		name, ok1 := pair[0].(string)
		value, ok2 := pair[1].(string)
		if !ok1 || !ok2 {
			return "", nil, fmt.Errorf("header %d: name and value must be str", i)
		}
		headers[i] = [2]string{name, value}
	}
	return status, headers, nil
}

// frameReader reads frames from a worker connection with recvmsg, collecting the
// file descriptors that F frames carry.
type frameReader struct {
	conn *net.UnixConn
	buf  []byte
	r, w int
	oob  []byte
	fds  []int
}

func newFrameReader(c *net.UnixConn) *frameReader {
	return &frameReader{conn: c, buf: make([]byte, 16<<10), oob: make([]byte, syscall.CmsgSpace(4*4))}
}

// fill reads at least once more into the buffer.
func (f *frameReader) fill() error {
	if f.r > 0 && f.r == f.w {
		f.r, f.w = 0, 0
	}
	if f.w == len(f.buf) {
		if f.r > 0 {
			copy(f.buf, f.buf[f.r:f.w])
			f.w -= f.r
			f.r = 0
		} else {
			nb := make([]byte, 2*len(f.buf))
			copy(nb, f.buf[:f.w])
			f.buf = nb
		}
	}
	n, oobn, _, _, err := f.conn.ReadMsgUnix(f.buf[f.w:], f.oob)
	if oobn > 0 {
		f.collectFDs(f.oob[:oobn])
	}
	f.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func (f *frameReader) collectFDs(oob []byte) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		if fds, err := syscall.ParseUnixRights(&m); err == nil {
			for _, fd := range fds {
				syscall.CloseOnExec(fd)
			}
			f.fds = append(f.fds, fds...)
		}
	}
}

// takeFD returns the oldest descriptor received, or -1.
func (f *frameReader) takeFD() int {
	if len(f.fds) == 0 {
		return -1
	}
	fd := f.fds[0]
	f.fds = f.fds[1:]
	return fd
}

// closeFDs closes descriptors nobody claimed.
func (f *frameReader) closeFDs() {
	for _, fd := range f.fds {
		syscall.Close(fd)
	}
	f.fds = nil
}

// buffered reports how many bytes are ready without a read.
func (f *frameReader) buffered() int { return f.w - f.r }

// next reads a frame header.
func (f *frameReader) next() (kind byte, n int, err error) {
	for f.w-f.r < frameHeaderLen {
		if err := f.fill(); err != nil {
			return 0, 0, err
		}
	}
	kind = f.buf[f.r]
	n = int(binary.LittleEndian.Uint32(f.buf[f.r+1:]))
	f.r += frameHeaderLen
	return kind, n, nil
}

// payload reads a whole payload of n bytes (control frames only).
func (f *frameReader) payload(n int) ([]byte, error) {
	if n > maxControlFrame {
		return nil, fmt.Errorf("frame of %d bytes exceeds %d", n, maxControlFrame)
	}
	if n > len(f.buf)-f.r {
		if n > len(f.buf) {
			nb := make([]byte, n+frameHeaderLen)
			copy(nb, f.buf[f.r:f.w])
			f.w -= f.r
			f.r = 0
			f.buf = nb
		} else {
			copy(f.buf, f.buf[f.r:f.w])
			f.w -= f.r
			f.r = 0
		}
	}
	for f.w-f.r < n {
		if err := f.fill(); err != nil {
			return nil, err
		}
	}
	p := f.buf[f.r : f.r+n]
	f.r += n
	return p, nil
}

// copyTo streams n payload bytes to w. werr is a write error (the client is gone),
// err a read error (the worker is); after either the connection is out of sync.
func (f *frameReader) copyTo(w io.Writer, n int) (werr, err error) {
	for n > 0 {
		if f.r == f.w {
			if err := f.fill(); err != nil {
				return nil, err
			}
		}
		chunk := min(n, f.w-f.r)
		if _, werr = w.Write(f.buf[f.r : f.r+chunk]); werr != nil {
			return werr, nil
		}
		f.r += chunk
		n -= chunk
	}
	return nil, nil
}

// decodeHeadFast decodes the shape CPython's marshal gives a typical head: the tuple,
// the list and each header pair in place, with ASCII strs and back-references to
// strs only. ok is false for anything else, which the general decoder then handles.
func decodeHeadFast(p []byte) (status string, headers [][2]string, ok bool) {
	f := fastHead{b: p}
	if !f.container(mSmallTuple, 2) {
		return "", nil, false
	}
	if status, ok = f.str(); !ok {
		return "", nil, false
	}
	if len(f.b) < 5 || f.b[0]&^mFlagRef != mList {
		return "", nil, false
	}
	if f.b[0]&mFlagRef != 0 {
		f.ref("")
	}
	n := int(binary.LittleEndian.Uint32(f.b[1:]))
	f.b = f.b[5:]
	if n > len(f.b)/4 {
		return "", nil, false
	}
	headers = make([][2]string, n)
	for i := range headers {
		if !f.container(mSmallTuple, 2) {
			return "", nil, false
		}
		if headers[i][0], ok = f.str(); !ok {
			return "", nil, false
		}
		if headers[i][1], ok = f.str(); !ok {
			return "", nil, false
		}
	}
	return status, headers, len(f.b) == 0
}

type fastHead struct {
	b     []byte
	refs  [24]string // "" stands for a container, which a reference must not name
	nrefs int
}

// container reads the header of a small tuple of n items.
func (f *fastHead) container(code byte, n int) bool {
	if len(f.b) < 2 || f.b[0]&^mFlagRef != code || int(f.b[1]) != n {
		return false
	}
	if f.b[0]&mFlagRef != 0 {
		f.ref("")
	}
	f.b = f.b[2:]
	return true
}

// str reads an ASCII str, or a reference to one read before.
func (f *fastHead) str() (string, bool) {
	if len(f.b) < 2 {
		return "", false
	}
	flag := f.b[0]&mFlagRef != 0
	var s string
	switch f.b[0] &^ mFlagRef {
	case mShortASCII, mShortInt:
		n := int(f.b[1])
		if len(f.b) < 2+n {
			return "", false
		}
		s = internHeader(f.b[2 : 2+n])
		f.b = f.b[2+n:]
	case mASCII, mASCIIInt:
		if len(f.b) < 5 {
			return "", false
		}
		n := int(binary.LittleEndian.Uint32(f.b[1:]))
		if n > len(f.b)-5 {
			return "", false
		}
		s = string(f.b[5 : 5+n])
		f.b = f.b[5+n:]
	case mRef:
		if len(f.b) < 5 {
			return "", false
		}
		i := int(binary.LittleEndian.Uint32(f.b[1:]))
		if i >= min(f.nrefs, len(f.refs)) || f.refs[i] == "" {
			return "", false // a container, or an empty str: the general decoder knows
		}
		f.b = f.b[5:]
		return f.refs[i], true
	default:
		return "", false
	}
	if flag {
		f.ref(s)
	}
	return s, true
}

// ref registers a flagged object; past the table's size every later reference
// misses and the general decoder takes over.
func (f *fastHead) ref(s string) {
	if f.nrefs < len(f.refs) {
		f.refs[f.nrefs] = s
	}
	f.nrefs++
}

// internHeader returns common header names and values without allocating.
func internHeader(b []byte) string {
	switch string(b) {
	case "Content-Type":
		return "Content-Type"
	case "Content-Length":
		return "Content-Length"
	case "text/plain":
		return "text/plain"
	case "text/html; charset=utf-8":
		return "text/html; charset=utf-8"
	case "200 OK":
		return "200 OK"
	}
	return string(b)
}
