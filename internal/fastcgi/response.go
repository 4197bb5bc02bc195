package fastcgi

// The CGI-style header block at the start of a FastCGI responder's STDOUT
// (RFC 3875 §6.3): validated strictly, since whatever passes here reaches the client.

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"

	"gantry/internal/httpfield"
)

// maxHeaderBlock bounds the header block; more is a broken or hostile backend.
const maxHeaderBlock = 64 << 10

// headerEnd returns the length of the header block in b including the blank line
// that ends it, or -1 when b does not hold all of it yet.
func headerEnd(b []byte) int {
	if len(b) > 0 && b[0] == '\n' {
		return 1
	}
	if len(b) > 1 && b[0] == '\r' && b[1] == '\n' {
		return 2
	}
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
}

var hopByHop = map[string]bool{"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Transfer-Encoding": true, "Upgrade": true, "Te": true, "Trailer": true}

// commonKeys maps the spellings of header names that PHP and its frameworks send to
// their canonical form, sparing the string that canonicalizing would allocate.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Status", "Content-Type", "Content-Length", "Location", "X-Powered-By",
		"Set-Cookie", "Cache-Control", "Expires", "Pragma", "Last-Modified", "Etag", "Vary"} {
		m[k] = k
	}
	m["Content-type"] = "Content-Type" // PHP's default header
	m["ETag"] = "Etag"
	return m
}()

// parseHeaderBlock parses a header block (as delimited by headerEnd) into a status
// and headers added to h. Invalid names or values, folded lines and a bogus Status
// are errors: they mean 502, never a header passed through (h is then partly
// filled and must not be used).
func parseHeaderBlock(block []byte, h http.Header) (int, error) {
	status := 0
	for len(block) > 0 {
		line := block
		if i := bytes.IndexByte(block, '\n'); i >= 0 {
			line, block = block[:i], block[i+1:]
		} else {
			block = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return 0, fmt.Errorf("fastcgi: response header line without colon: %q", truncate(line))
		}
		if !httpfield.ValidName(name) {
			return 0, fmt.Errorf("fastcgi: invalid response header name %q", truncate(name))
		}
		value = bytes.Trim(value, " \t")
		if !httpfield.ValidValue(value) {
			return 0, fmt.Errorf("fastcgi: invalid value for response header %q", name)
		}
		key, ok := commonKeys[string(name)]
		if !ok {
			key = textproto.CanonicalMIMEHeaderKey(string(name))
		}
		switch {
		case key == "Status":
			if status != 0 {
				return 0, errors.New("fastcgi: two Status headers")
			}
			code, err := parseStatus(value)
			if err != nil {
				return 0, err
			}
			status = code
		case key == "Content-Length":
			if _, err := strconv.ParseUint(string(value), 10, 63); err != nil {
				return 0, fmt.Errorf("fastcgi: invalid Content-Length %q", truncate(value))
			}
			if old := h.Get(key); old != "" && old != string(value) {
				return 0, errors.New("fastcgi: conflicting Content-Length headers")
			}
			h.Set(key, string(value))
		case hopByHop[key]:
		default:
			h[key] = append(h[key], string(value))
		}
	}
	if status == 0 {
		status = http.StatusOK
		if h.Get("Location") != "" {
			status = http.StatusFound
		}
	}
	return status, nil
}

func parseStatus(v []byte) (int, error) {
	if len(v) < 3 || len(v) > 3 && v[3] != ' ' {
		return 0, fmt.Errorf("fastcgi: invalid Status %q", truncate(v))
	}
	code, err := strconv.Atoi(string(v[:3]))
	if err != nil || code < 200 || code > 599 {
		return 0, fmt.Errorf("fastcgi: invalid Status %q", truncate(v))
	}
	return code, nil
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
