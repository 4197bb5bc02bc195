// Package cgiresp parses the response header a CGI script, a FastCGI responder or
// (for its status and hop-by-hop rules) a WSGI application hands the server
// (RFC 3875 §6). It is the one place the gateways decide what of a backend's
// header may reach a client, as cgienv is the one place the request variables are
// made: every rule here is enforced the same way for each of them.
package cgiresp

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"

	"gantry/internal/httpfield"
)

// MaxHeaderBytes bounds a response's header block, its empty last line included.
// The CGI host used 32 KB and the FastCGI client 64 KB; the smaller wins: it is
// four to eight times what nginx allows a FastCGI or proxied header by default
// (fastcgi_buffer_size, one page), so no real application comes near it, and every
// byte of it is held per request before the backend's output is known to be sane.
const MaxHeaderBytes = 32 << 10

var (
	// ErrIncomplete means the input ends before the empty line that ends the header
	// block: read more and parse again.
	ErrIncomplete = errors.New("incomplete header")
	// ErrTooLong means no header block ends within MaxHeaderBytes.
	ErrTooLong = fmt.Errorf("header longer than %d bytes", MaxHeaderBytes)
)

// Response is what a parsed header says about the response beyond its fields.
type Response struct {
	Status   int    // from the Status field or an NPH status line; 0 when neither was sent
	Location string // the Location field; "" when absent or empty

	hasLocation bool // an empty Location is still a (client) redirect
}

// LocalRedirect reports whether the backend asks the server to answer with another
// of its own resources (RFC 3875 §6.2.2): a Location that is a path on this server
// and no Status. Only the CGI host does this; a FastCGI response is a client
// redirect, as nginx and php-fpm expect.
func (r Response) LocalRedirect() bool {
	return r.Status == 0 && isLocalPath(r.Location)
}

// Code is the status to send: the one the backend gave, else 302 for a client
// redirect (RFC 3875 §6.2.3), else 200.
func (r Response) Code() int {
	switch {
	case r.Status != 0:
		return r.Status
	case r.hasLocation:
		return http.StatusFound
	}
	return http.StatusOK
}

// isLocalPath reports whether a Location names a path on this server ("/x"), not a
// URL or a scheme-relative "//host/x" (nor "/\host", which browsers read as one).
func isLocalPath(loc string) bool {
	return len(loc) > 0 && loc[0] == '/' && (len(loc) == 1 || (loc[1] != '/' && loc[1] != '\\'))
}

// Parse parses the header block at the start of b — lines ending in LF or CRLF, up
// to an empty line — adding its fields to h, which should be empty. It returns the
// number of bytes the block used; the body follows. When b holds no complete block
// yet it returns ErrIncomplete and leaves h untouched, so the caller can read more
// and call Parse again with all of it.
//
// Anything a client could be harmed by is an error, and the header is then never
// passed on in part (h may be partly filled and must be dropped): a bad field name,
// a value with a control byte, a folded line, a bogus Status or Content-Length, two
// Location fields. Status and the hop-by-hop fields are taken out of h.
func Parse(b []byte, h http.Header) (Response, int, error) {
	return parse(b, h, false)
}

// ParseNPH is Parse for a non-parsed-header script (RFC 3875 §5), whose first line
// is an HTTP status line and which may not send a Status field.
func ParseNPH(b []byte, h http.Header) (Response, int, error) {
	return parse(b, h, true)
}

func parse(b []byte, h http.Header, nph bool) (Response, int, error) {
	n, lines, err := blockLen(b)
	if errors.Is(err, ErrIncomplete) && lines > 0 {
		// A bad line is refused as soon as it is whole, not when the backend ends
		// or times out: "hello\n" from a script that then runs on is a 502 now.
		if _, err := parseLines(b[:bytes.LastIndexByte(b, '\n')+1], http.Header{}, nph, lines); err != nil {
			return Response{}, 0, err
		}
	}
	if err != nil {
		return Response{}, 0, err
	}
	resp, err := parseLines(b[:n], h, nph, lines-1) // the empty line holds no field
	return resp, n, err
}

// parseLines parses the lines of b, up to an empty line or the end of b; at most
// fields of them are fields.
func parseLines(b []byte, h http.Header, nph bool, fields int) (Response, error) {
	var resp Response
	var vals []string
	for first := true; len(b) > 0; first = false {
		i := bytes.IndexByte(b, '\n') // blockLen found one on every line
		line := b[:i]
		b = b[i+1:]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if first && nph {
			code, err := parseStatusLine(line)
			if err != nil {
				return resp, err
			}
			resp.Status = code
			continue
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			// obs-fold. RFC 9112 §5.2 lets a gateway either unfold it or answer 502;
			// nginx answers 502 ("upstream sent invalid header") and Apache rejects a
			// folded line as a malformed header, so a field is one line here too.
			return resp, fmt.Errorf("continuation line (obs-fold) %q: send each field on one line", truncate(line))
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return resp, fmt.Errorf("header line %q has no field name", truncate(line))
		}
		name, value := line[:colon], trimSpace(line[colon+1:])
		if !httpfield.ValidName(name) {
			return resp, fmt.Errorf("header field name %q is not a token", truncate(name))
		}
		if !httpfield.ValidValue(value) {
			return resp, fmt.Errorf("header %s: control byte in value", name)
		}
		key := canonicalKey(name)
		if key == "Status" {
			if nph {
				return resp, errors.New("nph script sent a Status field")
			}
			if resp.Status != 0 {
				return resp, errors.New("more than one Status field")
			}
			code, err := ParseStatus(value)
			if err != nil {
				return resp, err
			}
			resp.Status = code
			continue
		}
		if IsHopByHop(key) {
			continue
		}
		v := string(value)
		switch key {
		case "Content-Length":
			if _, err := strconv.ParseUint(v, 10, 63); err != nil {
				return resp, fmt.Errorf("bogus Content-Length %q", truncate(v))
			}
			if old := h[key]; len(old) > 0 {
				if old[0] != v {
					return resp, errors.New("conflicting Content-Length fields")
				}
				continue
			}
		case "Location":
			if resp.hasLocation {
				return resp, errors.New("more than one Location field")
			}
			// An empty one is a redirect to the same resource, as Apache and PHP
			// take it (header("Location: ".$url) with an empty $url), never a 502.
			resp.Location, resp.hasLocation = v, true
		}
		if old := h[key]; len(old) > 0 {
			h[key] = append(old, v)
			continue
		}
		// One array holds the values of all fields sent once, as most are.
		if vals == nil {
			vals = make([]string, 0, fields)
		}
		vals = append(vals, v)
		h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	return resp, nil
}

// commonKeys maps the spellings of field names that PHP and the frameworks send to
// their canonical form without the string a conversion would allocate.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Status", "Content-Type", "Content-Length", "Location", "X-Powered-By",
		"Set-Cookie", "Cache-Control", "Expires", "Pragma", "Last-Modified", "Etag", "Vary",
		"Content-Encoding", "Content-Disposition", "X-Frame-Options", "X-Content-Type-Options"} {
		m[k] = k
	}
	m["Content-type"] = "Content-Type" // PHP's default header
	m["ETag"] = "Etag"
	return m
}()

func canonicalKey(name []byte) string {
	if k, ok := commonKeys[string(name)]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(string(name))
}

// blockLen returns the length of the header block at the start of b, up to and with
// its empty last line, and the number of lines in it (the whole lines of b when
// the block is incomplete).
func blockLen(b []byte) (n, lines int, err error) {
	scan := b
	if len(scan) > MaxHeaderBytes {
		scan = scan[:MaxHeaderBytes]
	}
	for {
		i := bytes.IndexByte(scan[n:], '\n')
		if i < 0 {
			if len(b) >= MaxHeaderBytes {
				return 0, 0, ErrTooLong
			}
			return 0, lines, ErrIncomplete
		}
		start := n
		n += i + 1
		lines++
		if i == 0 || i == 1 && scan[start] == '\r' {
			return n, lines, nil
		}
	}
}

func trimSpace(s []byte) []byte {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// truncate keeps log lines short when a backend sends garbage.
func truncate[T ~string | ~[]byte](s T) string {
	if len(s) > 64 {
		return string(s[:64]) + "..."
	}
	return string(s)
}
