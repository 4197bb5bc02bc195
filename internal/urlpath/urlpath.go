// Package urlpath normalises a request's path before route matching, so that a
// route, a handler and the backend behind it all read the same path: nginx
// merges slashes and resolves dot segments before choosing a location, and a
// path that reached a gateway or an upstream with "/../" in it could name
// something the route was never meant to serve.
package urlpath

import "errors"

// Errors of Clean; each is a 400 for the client.
var (
	ErrNotAbsolute = errors.New("path does not start with /")
	ErrBadEscape   = errors.New("path has a malformed percent-escape")
	ErrAboveRoot   = errors.New("path climbs above / with ..")
)

// Clean returns the normal form of an escaped (as sent) URL path:
//
//   - percent-escapes of unreserved characters (ALPHA DIGIT "-._~", RFC 3986
//     §2.3) are decoded, once; every other escape is kept as sent, so "%2F"
//     inside a segment stays "%2F" (as nginx passes it on);
//   - a segment that is "." or "..", or starts with ".;" or "..;" (a path
//     parameter, which Tomcat and Spring strip before they read the segment),
//     is a dot segment; so is such a piece between an escaped slash and
//     something else ("..%2F", "%2F.."), where that escaped slash counts as "/",
//     as any backend that decodes it would read it;
//   - repeated slashes are merged, then dot segments are removed (RFC 3986
//     §5.2.4); a ".." that would climb above "/" is ErrAboveRoot.
//
// Clean returns p itself, without allocating, when p is already normal.
func Clean(p string) (string, error) {
	if p == "" || p[0] != '/' {
		return "", ErrNotAbsolute
	}
	if isPlain(p) {
		return p, nil
	}
	b, err := decodeUnreserved(p)
	if err != nil {
		return "", err
	}
	b = slashesNextToDots(b)
	out, err := removeDots(b)
	if err != nil {
		return "", err
	}
	if string(out) == p {
		return p, nil
	}
	return string(out), nil
}

// isPlain reports whether p has no escape, no dot segment and no empty segment,
// the shape of nearly every request: then Clean has nothing to do.
func isPlain(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%':
			return false
		case '/':
			if i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.') {
				return false
			}
		}
	}
	return true
}

var unreserved = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['-'], t['.'], t['_'], t['~'] = true, true, true, true
	return t
}()

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeUnreserved decodes the escapes of unreserved characters and checks that
// every other "%" starts a well-formed escape.
func decodeUnreserved(p string) ([]byte, error) {
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(p) {
			return nil, ErrBadEscape
		}
		hi, ok1 := unhex(p[i+1])
		lo, ok2 := unhex(p[i+2])
		if !ok1 || !ok2 {
			return nil, ErrBadEscape
		}
		if d := hi<<4 | lo; unreserved[d] {
			b = append(b, d)
		} else {
			b = append(b, p[i:i+3]...)
		}
		i += 2
	}
	return b, nil
}

// isEscapedSlash reports whether b[i:] starts with "%2F" or "%2f".
func isEscapedSlash(b []byte, i int) bool {
	return i+2 < len(b) && b[i] == '%' && b[i+1] == '2' && (b[i+2] == 'F' || b[i+2] == 'f')
}

// isDot reports whether a segment (or a piece between escaped slashes) is a dot
// segment: 1 for ".", 2 for "..", 0 otherwise.
func isDot(seg []byte) int {
	switch {
	case len(seg) == 1 && seg[0] == '.', len(seg) >= 2 && seg[0] == '.' && seg[1] == ';':
		return 1
	case len(seg) == 2 && seg[0] == '.' && seg[1] == '.', len(seg) >= 3 && seg[0] == '.' && seg[1] == '.' && seg[2] == ';':
		return 2
	}
	return 0
}

// slashesNextToDots turns each escaped slash that borders a dot piece into "/",
// in place: "..%2F" and "%2F.." are ".." segments to a backend that decodes
// them, so they are resolved here, where the route is chosen.
func slashesNextToDots(b []byte) []byte {
	// Pieces are delimited by "/" and by escaped slashes; pieceStart is where
	// the piece being copied begins in out.
	out := b[:0]
	pieceStart := 0
	for i := 0; i < len(b); {
		if !isEscapedSlash(b, i) {
			if b[i] == '/' {
				pieceStart = len(out) + 1
			}
			out = append(out, b[i])
			i++
			continue
		}
		before := out[pieceStart:]
		end := i + 3
		for end < len(b) && b[end] != '/' && !isEscapedSlash(b, end) {
			end++
		}
		after := b[i+3 : end]
		if isDot(before) != 0 || isDot(after) != 0 {
			out = append(out, '/')
		} else {
			out = append(out, b[i:i+3]...)
		}
		pieceStart = len(out)
		i += 3
	}
	return out
}

// removeDots merges repeated slashes and removes dot segments from b, which
// starts with "/", in place.
func removeDots(b []byte) ([]byte, error) {
	out := b[:1] // "/"
	trailing := false
	for i := 1; i <= len(b); {
		j := i
		for j < len(b) && b[j] != '/' {
			j++
		}
		seg := b[i:j]
		last := j >= len(b)
		switch isDot(seg) {
		case 1:
			trailing = last
		case 2:
			if len(out) == 1 {
				return nil, ErrAboveRoot
			}
			k := len(out) - 1 // out ends in "x" or "x/"; drop the last segment
			if out[k] == '/' {
				k--
			}
			for out[k] != '/' {
				k--
			}
			out = out[:k+1]
			trailing = last
		default:
			if len(seg) == 0 {
				// merged into its neighbour; a final one is the trailing slash
				trailing = last
				break
			}
			if out[len(out)-1] != '/' {
				out = append(out, '/')
			}
			out = append(out, seg...)
			trailing = false
		}
		i = j + 1
	}
	if trailing && out[len(out)-1] != '/' {
		out = append(out, '/')
	}
	return out, nil
}
