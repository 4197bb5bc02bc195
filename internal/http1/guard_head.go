package http1

import (
	"bytes"
	"net/http"
	"strings"

	"gantry/internal/httpfield"
)

// framing is what a request head says about the body that follows it.
type framing struct {
	length  int64 // Content-Length, 0 when absent
	chunked bool
}

// check validates a complete head h (ending in CRLFCRLF) the way the guard needs:
// it returns the status to refuse it with and why, or 0 and fills f.
func (f *framing) check(h []byte) (status int, cause string) {
	i := bytes.IndexByte(h, '\n')
	method, target, version, ok := splitRequestLine(h[:i-1])
	if !ok {
		return http.StatusBadRequest, "malformed request line"
	}
	minor := 0
	switch string(version) {
	case "HTTP/1.1":
		minor = 1
	case "HTTP/1.0":
	default:
		if len(version) == 8 && string(version[:5]) == "HTTP/" && isDigit(version[5]) && version[6] == '.' && isDigit(version[7]) {
			return http.StatusHTTPVersionNotSupported, "unsupported HTTP version"
		}
		return http.StatusBadRequest, "malformed HTTP version"
	}
	if !validTarget(method, target) {
		return http.StatusBadRequest, "malformed request target"
	}
	var hosts, lengths, codings int
	var host, length, coding []byte
	for rest := h[i+1 : len(h)-2]; len(rest) > 0; {
		j := bytes.IndexByte(rest, '\n')
		line := rest[:j-1]
		rest = rest[j+1:]
		name, value, ok := fieldLine(line)
		if !ok {
			return http.StatusBadRequest, "malformed header field"
		}
		switch {
		case eqFold(name, "host"):
			hosts++
			host = value
		case eqFold(name, "content-length"):
			lengths++
			length = value
		case eqFold(name, "transfer-encoding"):
			codings++
			coding = value
		}
	}
	switch {
	case hosts > 1:
		return http.StatusBadRequest, "repeated Host"
	case hosts == 0 && minor == 1:
		return http.StatusBadRequest, "missing Host"
	case hosts == 1 && !validHost(host):
		return http.StatusBadRequest, "malformed Host"
	}
	if codings > 0 {
		switch {
		case minor == 0:
			// net/http ignores it (Go issue 12785): a proxy in front may not.
			return http.StatusBadRequest, "Transfer-Encoding on HTTP/1.0"
		case lengths > 0:
			return http.StatusBadRequest, "Content-Length with Transfer-Encoding"
		case codings > 1:
			return http.StatusBadRequest, "repeated Transfer-Encoding"
		case !eqFold(coding, "chunked"):
			return http.StatusNotImplemented, "unsupported Transfer-Encoding"
		}
		f.chunked = true
		return 0, ""
	}
	if lengths > 1 {
		return http.StatusBadRequest, "repeated Content-Length"
	}
	if lengths == 1 {
		if len(length) == 0 || len(length) > maxCLDigits {
			return http.StatusBadRequest, "malformed Content-Length"
		}
		for _, c := range length {
			if !isDigit(c) {
				return http.StatusBadRequest, "malformed Content-Length"
			}
			f.length = f.length*10 + int64(c-'0')
		}
	}
	return 0, ""
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// splitRequestLine splits method SP request-target SP HTTP-version, with a token
// for a method and single spaces.
func splitRequestLine(line []byte) (method, target, version []byte, ok bool) {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 < 1 {
		return nil, nil, nil, false
	}
	method = line[:sp1]
	for _, c := range method {
		if !httpfield.IsTokenChar(c) {
			return nil, nil, nil, false
		}
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 < 1 {
		return nil, nil, nil, false
	}
	return method, rest[:sp2], rest[sp2+1:], true
}

// validTarget accepts the four forms of RFC 9112 §3.2 made of visible ASCII: origin
// form, absolute form (whose authority must be a valid host), authority form for
// CONNECT and "*" for OPTIONS.
func validTarget(method, t []byte) bool {
	for _, c := range t {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	switch {
	case t[0] == '/':
		return true
	case string(t) == "*":
		return string(method) == "OPTIONS"
	case string(method) == "CONNECT":
		return validHost(t)
	}
	i := bytes.Index(t, []byte("://"))
	if i < 1 || !isAlpha(t[0]) {
		return false
	}
	for _, c := range t[1:i] {
		if !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	auth := t[i+3:]
	if j := bytes.IndexAny(auth, "/?#"); j >= 0 {
		auth = auth[:j]
	}
	if j := bytes.LastIndexByte(auth, '@'); j >= 0 {
		auth = auth[j+1:]
	}
	return len(auth) > 0 && validHost(auth)
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// fieldLine splits a header field line (without its CRLF): a token, a colon
// right after it, and a value without control characters other than tab. A line
// starting with whitespace (obs-fold) has no name and fails.
func fieldLine(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon < 1 {
		return nil, nil, false
	}
	name = line[:colon]
	for _, c := range name {
		if !httpfield.IsTokenChar(c) {
			return nil, nil, false
		}
	}
	value = line[colon+1:]
	for _, c := range value {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return nil, nil, false
		}
	}
	return name, trimOWS(value), true
}

// validHost accepts uri-host [ ":" port ] (RFC 9110 §7.2): a reg-name (which
// includes IPv4 addresses) or an IP literal in brackets, and a port of at most
// 65535. An empty value is allowed, as RFC 9112 §3.2 asks of a client whose target
// has no authority.
func validHost(h []byte) bool {
	if len(h) == 0 {
		return true
	}
	var port []byte
	if h[0] == '[' {
		end := bytes.IndexByte(h, ']')
		if end < 3 {
			return false
		}
		for _, c := range h[1:end] {
			if !isHex(c) && c != ':' && c != '.' {
				return false
			}
		}
		switch rest := h[end+1:]; {
		case len(rest) == 0:
		case rest[0] == ':':
			port = rest[1:]
			if len(port) == 0 {
				return false
			}
		default:
			return false
		}
	} else {
		name := h
		if i := bytes.IndexByte(h, ':'); i >= 0 {
			name, port = h[:i], h[i+1:]
			if len(port) == 0 {
				return false
			}
		}
		if len(name) == 0 {
			return false
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			if c == '%' {
				if i+2 >= len(name) || !isHex(name[i+1]) || !isHex(name[i+2]) {
					return false
				}
				i += 2
				continue
			}
			if !regNameChar[c] {
				return false
			}
		}
	}
	if len(port) > 5 {
		return false
	}
	n := 0
	for _, c := range port {
		if !isDigit(c) {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// regNameChar is unreserved / sub-delims (RFC 3986 §3.2.2).
var regNameChar = httpfield.AlnumAnd("-._~!$&'()*+,;=")

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// Bounds on what a Refusal keeps of the client's head.
const (
	maxRefusalString = 512
	maxRefusalFields = 32
)

// describe takes what can be read of a refused head b (perhaps incomplete or
// malformed) for the log: its request line's parts and its fields.
func describe(b []byte) *Refusal {
	r := &Refusal{Header: http.Header{}}
	line, rest, _ := bytes.Cut(b, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	parts := bytes.SplitN(line, []byte(" "), 3)
	r.Method = sanitize(parts[0])
	if len(parts) > 1 {
		r.Target = sanitize(parts[1])
	}
	if len(parts) > 2 {
		r.Proto = sanitize(parts[2])
	}
	for n := 0; len(rest) > 0 && n < maxRefusalFields; n++ {
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 {
			continue
		}
		key := http.CanonicalHeaderKey(sanitize(name))
		v := sanitize(trimOWS(value))
		r.Header[key] = append(r.Header[key], v)
		if key == "Host" && r.Host == "" {
			r.Host = v
		}
	}
	return r
}

// sanitize makes client bytes safe to log: at most maxRefusalString bytes, with
// control and non-ASCII bytes (and the backslash) escaped as \xHH.
func sanitize(b []byte) string {
	if len(b) > maxRefusalString {
		b = b[:maxRefusalString]
	}
	var sb strings.Builder
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == '\\' {
			const hex = "0123456789abcdef"
			sb.WriteString(`\x`)
			sb.WriteByte(hex[c>>4])
			sb.WriteByte(hex[c&15])
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}
