package cgi

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"

	"gantry/internal/httpfield"
)

// maxHeaderBytes bounds the header block a script may send; it is also the size of
// the buffer the header is read into.
const maxHeaderBytes = 32 << 10

// errIncomplete means the buffer holds no complete header block yet.
var errIncomplete = errors.New("incomplete header")

// response is a script's parsed response header (RFC 3875 §6).
type response struct {
	header   http.Header // without Status and hop-by-hop fields
	status   int         // from Status (or the nph status line); 0 when absent
	location string
}

// hopByHop fields describe one connection; a script cannot set them for the server's.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Transfer-Encoding": true,
	"Te": true, "Trailer": true, "Upgrade": true,
}

// parseHeader parses the header block at the start of b, with lines ending in LF or
// CRLF, up to the empty line. It returns the number of bytes the block used, or
// errIncomplete when b ends before the empty line. When statusLine is set (an nph-
// script) the first line is an HTTP status line. Anything a client could be harmed
// by — a bad field name, a value with control bytes, a bogus Status or Content-Length —
// is an error: the header is never passed on in part.
func parseHeader(b []byte, statusLine bool) (response, int, error) {
	resp := response{header: make(http.Header, 4)}
	var last string // the field a continuation line extends
	off := 0
	first := true
	for {
		nl := bytes.IndexByte(b[off:], '\n')
		if nl < 0 {
			if len(b) >= maxHeaderBytes {
				return resp, 0, fmt.Errorf("header longer than %d bytes", maxHeaderBytes)
			}
			return resp, 0, errIncomplete
		}
		line := b[off : off+nl]
		off += nl + 1
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if first && statusLine {
			first = false
			code, err := parseStatusLine(line)
			if err != nil {
				return resp, 0, err
			}
			resp.status = code
			continue
		}
		first = false
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			// obs-fold (RFC 7230 §3.2.4): join to the previous field, as Apache does.
			if last == "" {
				return resp, 0, errors.New("continuation line before any header field")
			}
			v := trimSpace(line)
			if !httpfield.ValidValue(v) {
				return resp, 0, fmt.Errorf("header %s: control byte in continued value", last)
			}
			vals := resp.header[last]
			vals[len(vals)-1] += " " + string(v)
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return resp, 0, fmt.Errorf("header line %q has no field name", truncate(line))
		}
		name, value := line[:colon], trimSpace(line[colon+1:])
		if !httpfield.ValidName(name) {
			return resp, 0, fmt.Errorf("header field name %q is not a token", truncate(name))
		}
		if !httpfield.ValidValue(value) {
			return resp, 0, fmt.Errorf("header %s: control byte in value", name)
		}
		key := textproto.CanonicalMIMEHeaderKey(string(name))
		switch {
		case key == "Status":
			if statusLine {
				return resp, 0, errors.New("nph script sent a Status field")
			}
			if resp.status != 0 {
				return resp, 0, errors.New("more than one Status field")
			}
			code, err := parseStatus(value)
			if err != nil {
				return resp, 0, err
			}
			resp.status = code
			last = ""
			continue
		case key == "Content-Length":
			if _, err := strconv.ParseUint(string(value), 10, 63); err != nil {
				return resp, 0, fmt.Errorf("bogus Content-Length %q", truncate(value))
			}
			if old := resp.header.Get(key); old != "" && old != string(value) {
				return resp, 0, errors.New("conflicting Content-Length fields")
			}
			resp.header[key] = []string{string(value)}
			last = ""
			continue
		case hopByHop[key]:
			last = ""
			continue
		case key == "Location":
			if resp.location != "" {
				return resp, 0, errors.New("more than one Location field")
			}
			if len(value) == 0 {
				return resp, 0, errors.New("empty Location")
			}
			resp.location = string(value)
		}
		resp.header[key] = append(resp.header[key], string(value))
		last = key
	}
	return resp, off, nil
}

// parseStatus parses a Status value: three digits, then optionally a space and a
// reason phrase. Only final statuses a server may send (200-599) are accepted.
func parseStatus(v []byte) (int, error) {
	if len(v) < 3 || (len(v) > 3 && v[3] != ' ' && v[3] != '\t') {
		return 0, fmt.Errorf("bogus Status %q", truncate(v))
	}
	code := 0
	for _, c := range v[:3] {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bogus Status %q", truncate(v))
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code > 599 {
		return 0, fmt.Errorf("Status %d is not a final response status", code)
	}
	return code, nil
}

// parseStatusLine parses an nph- script's "HTTP/1.x NNN reason" line.
func parseStatusLine(line []byte) (int, error) {
	rest, ok := bytes.CutPrefix(line, []byte("HTTP/1."))
	if !ok || len(rest) < 2 || (rest[0] != '0' && rest[0] != '1') || rest[1] != ' ' {
		return 0, fmt.Errorf("bogus nph status line %q", truncate(line))
	}
	return parseStatus(rest[2:])
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// truncate keeps log lines short when a script sends garbage.
func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
