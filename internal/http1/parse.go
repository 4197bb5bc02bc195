// Package http1 is gantry's HTTP/1.1 fast path: a per-connection loop that parses
// requests strictly (RFC 9112) and answers the narrow set it can answer without
// net/http's per-request machinery — GET and HEAD without a body, with a plain
// origin-form path — through a Handler. The first request it does not take (any
// other method, a body, Expect, Upgrade, an odd byte anywhere, a request the Handler
// declines) hands the whole connection, with every byte read so far, to a net/http
// Server for the rest of its life, so every other behaviour (errors, bodies,
// WebSocket, Range...) stays net/http's.
//
// The parser never answers an error itself: anything it does not accept goes to
// net/http, which then answers exactly as it would have without the fast path.
package http1

import (
	"bytes"

	"gantry/internal/httpfield"
)

// Limits of the fast path; a request beyond them is handed to net/http.
const (
	// maxFields is the most header fields a fast request may have.
	maxFields = 64
	// bufSize is the read buffer of a connection: a request head that does not fit
	// goes to net/http, which applies max_header.
	bufSize = 8 << 10
)

// verdict is what parse decided about the bytes at the start of its buffer.
type verdict int

const (
	needMore verdict = iota // the head is incomplete and may still be eligible
	ready                   // a complete, eligible head
	handoff                 // not for the fast path: net/http must see these bytes
)

// field is one header line, as slices of the read buffer.
type field struct{ name, value []byte }

// head is a parsed request head. Its slices point into the buffer given to parse.
type head struct {
	method  []byte // GET or HEAD
	target  []byte // origin-form, safe characters only
	minor   int    // HTTP/1.minor, 0 or 1
	host    []byte
	hasHost bool
	close   bool // Connection: close
	keep    bool // Connection: keep-alive
	nfields int
	fields  [maxFields]field
}

// parse examines buf, which starts at the first byte of a request. With ready, the
// head is n bytes long (including the blank line) and h describes it. maxHead
// bounds the head's length: a longer one is handed off (net/http answers 431).
func parse(buf []byte, h *head, maxHead int) (n int, v verdict) {
	end := bytes.Index(buf, crlfcrlf)
	if end < 0 {
		// A bare LF would never end the head for us but does for net/http
		// (lenient, as RFC 9112 §2.2 allows): let it decide.
		if bytes.IndexByte(buf, '\n') >= 0 && hasBareLF(buf) {
			return 0, handoff
		}
		if len(buf) >= maxHead {
			return 0, handoff
		}
		return 0, needMore
	}
	n = end + 4
	if n > maxHead {
		return 0, handoff
	}
	*h = head{}
	lines := buf[:end+2]
	i := bytes.IndexByte(lines, '\n')
	if !requestLine(lines[:i+1], h) {
		return 0, handoff
	}
	lines = lines[i+1:]
	for len(lines) > 0 {
		i := bytes.IndexByte(lines, '\n')
		if i < 1 || lines[i-1] != '\r' {
			return 0, handoff // bare LF
		}
		if !h.addField(lines[:i-1]) {
			return 0, handoff
		}
		lines = lines[i+1:]
	}
	if h.minor == 1 && !h.hasHost {
		return 0, handoff // net/http answers 400
	}
	return n, ready
}

var crlfcrlf = []byte("\r\n\r\n")

func hasBareLF(b []byte) bool {
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
	}
	return false
}

// requestLine parses "GET /path HTTP/1.1\r\n" (line includes the CRLF).
func requestLine(line []byte, h *head) bool {
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return false
	}
	line = line[:len(line)-2]
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return false
	}
	h.method = line[:sp]
	if string(h.method) != "GET" && string(h.method) != "HEAD" {
		return false
	}
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp < 0 {
		return false
	}
	h.target = line[:sp]
	switch string(line[sp+1:]) {
	case "HTTP/1.1":
		h.minor = 1
	case "HTTP/1.0":
		h.minor = 0
	default:
		return false
	}
	return safeTarget(h.target)
}

// safeTarget accepts an origin-form target whose path is made of unreserved
// characters, most sub-delims, ':', '@' and '/' only — no '%' (so no decoding can make
// it differ from what the file lookup sees), no "/." (no dot segments, no
// dotfiles), no "//" — and whose query holds no '#', space or control.
func safeTarget(t []byte) bool {
	if len(t) == 0 || t[0] != '/' {
		return false
	}
	q := bytes.IndexByte(t, '?')
	p := t
	if q >= 0 {
		p = t[:q]
		for _, c := range t[q+1:] {
			if !pathChar[c] && !queryChar[c] {
				return false
			}
		}
	}
	for i, c := range p {
		if !pathChar[c] {
			return false
		}
		if c == '/' && i+1 < len(p) && (p[i+1] == '.' || p[i+1] == '/') {
			return false
		}
	}
	return true
}

// pathChar is what a fast request's path may hold. Of the sub-delims, not the
// ones url.URL escapes in a path ("!'()*"): for those net/http keeps a RawPath,
// which this path does not build.
var pathChar = httpfield.AlnumAnd("-._~$&+,;=:@/")

// queryChar is what a fast request's query may hold besides pathChar.
var queryChar = [256]bool{'!': true, '\'': true, '(': true, ')': true, '*': true, '%': true, '?': true}

var hostChar = httpfield.AlnumAnd("-._:[]")

// addField parses one header line (without its CRLF) and reports whether the
// request is still eligible.
func (h *head) addField(line []byte) bool {
	colon := bytes.IndexByte(line, ':')
	if colon < 1 {
		return false // no name; also obs-fold, whose line starts with a space
	}
	name := line[:colon]
	for _, c := range name {
		if !httpfield.IsTokenChar(c) {
			return false // includes a space before the colon (RFC 9112 §5.1)
		}
	}
	value := line[colon+1:]
	for _, c := range value {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	value = trimOWS(value)
	switch {
	case eqFold(name, "host"):
		if h.hasHost {
			return false
		}
		for _, c := range value {
			if !hostChar[c] {
				return false
			}
		}
		if !validHost(value) {
			return false // x:80:80 and the like: the guard answers 400
		}
		h.host, h.hasHost = value, true
	case eqFold(name, "content-length"):
		if string(value) != "0" {
			return false
		}
	case eqFold(name, "connection"):
		switch {
		case eqFold(value, "close"):
			h.close = true
		case eqFold(value, "keep-alive"):
			h.keep = true
		default:
			return false
		}
	case eqFold(name, "transfer-encoding"), eqFold(name, "expect"), eqFold(name, "upgrade"):
		return false
	}
	if h.nfields == maxFields {
		return false
	}
	h.fields[h.nfields] = field{name, value}
	h.nfields++
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// eqFold compares ASCII case-insensitively; lower must be lower case.
func eqFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
