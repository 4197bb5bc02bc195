package static

import (
	"slices"
	"strings"
)

// This file holds the parsers for the request headers that steer a static response:
// Range, Accept-Encoding and the entity-tag lists of If-Match / If-None-Match. They
// work on the raw header string without allocating (Range aside, which must return
// its ranges), because Accept-Encoding and If-None-Match are read on the hot path.

// byteRange is an inclusive-exclusive span [start, end) of a representation.
type byteRange struct{ start, end int64 }

func (r byteRange) length() int64 { return r.end - r.start }

type rangeResult int

const (
	rangeIgnore        rangeResult = iota // absent, malformed, other unit or too many parts: send 200
	rangeSatisfiable                      // send 206 with the returned ranges
	rangeUnsatisfiable                    // send 416
)

// coalesceGap is how far apart two ranges may be and still be merged into one part:
// roughly the cost of the part header a separate part would need (RFC 9110 §14.2
// allows coalescing ranges "separated by a gap that is smaller than the overhead of
// sending multiple parts").
const coalesceGap = 80

// parseRange parses a Range header value for a representation of size bytes. More
// than maxParts range-specs make the whole header ignored (Apache's MaxRanges): the
// parse stops there, so a huge header costs no more than maxParts specs. Satisfiable
// ranges are sorted and overlapping or nearly adjacent ones merged, so the response
// is never larger than the file plus one part header per distinct span.
func parseRange(s string, size int64, maxParts int) ([]byteRange, rangeResult) {
	s = trimOWS(s)
	if len(s) < 6 || !strings.EqualFold(s[:6], "bytes=") {
		return nil, rangeIgnore
	}
	s = s[6:]
	var out []byteRange
	parts := 0
	for s != "" {
		var spec string
		spec, s = nextItem(s, ',')
		if spec == "" {
			continue // RFC 9110 §5.6.1: empty list elements are ignored
		}
		parts++
		if parts > maxParts {
			return nil, rangeIgnore
		}
		dash := strings.IndexByte(spec, '-')
		if dash < 0 {
			return nil, rangeIgnore
		}
		first, last := spec[:dash], spec[dash+1:]
		if first == "" { // suffix-range "-N": the last N bytes
			n, ok := parseDigits(last)
			if !ok {
				return nil, rangeIgnore
			}
			if n == 0 || size == 0 {
				continue
			}
			out = append(out, byteRange{max(size-n, 0), size})
			continue
		}
		a, ok := parseDigits(first)
		if !ok {
			return nil, rangeIgnore
		}
		end := size
		if last != "" {
			b, ok := parseDigits(last)
			if !ok || b < a {
				return nil, rangeIgnore
			}
			if b < size {
				end = b + 1
			}
		}
		if a >= size {
			continue // unsatisfiable on its own; others may still be satisfiable
		}
		out = append(out, byteRange{a, end})
	}
	if parts == 0 {
		return nil, rangeIgnore
	}
	if len(out) == 0 {
		return nil, rangeUnsatisfiable
	}
	if len(out) > 1 {
		slices.SortFunc(out, func(x, y byteRange) int {
			switch {
			case x.start < y.start:
				return -1
			case x.start > y.start:
				return 1
			}
			return 0
		})
		merged := out[:1]
		for _, r := range out[1:] {
			cur := &merged[len(merged)-1]
			if r.start <= cur.end+coalesceGap {
				cur.end = max(cur.end, r.end)
				continue
			}
			merged = append(merged, r)
		}
		out = merged
	}
	return out, rangeSatisfiable
}

// parseDigits parses a non-empty run of ASCII digits that fits in an int64.
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// nextItem splits the first element off a list separated by sep, without the
// optional whitespace around it.
func nextItem(s string, sep byte) (item, rest string) {
	if i := strings.IndexByte(s, sep); i >= 0 {
		return trimOWS(s[:i]), s[i+1:]
	}
	return trimOWS(s), ""
}

func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// Content codings gantry can serve from precompressed siblings, in order of
// preference when the client rates them equally (smaller first).
const (
	encIdentity = iota
	encGzip
	encBrotli
	numEncodings
)

var encodingNames = [numEncodings]string{encIdentity: "", encGzip: "gzip", encBrotli: "br"}

// siblingSuffix is the file name suffix of each coding's precompressed sibling.
var siblingSuffix = [numEncodings]string{encIdentity: "", encGzip: ".gz", encBrotli: ".br"}

// acceptedQ returns the q-values (in thousandths) the Accept-Encoding value s gives
// to identity, gzip and br. An absent header accepts only identity (RFC 9110
// §12.5.3 lets a server assume any coding, but a client that sends nothing is most
// often a tool that cannot decode). "*" covers codings not named; "x-gzip" is gzip.
// Identity not named is acceptable but ranks below any coding the client names:
// a client listing gzip wants it, whatever q it gives.
func acceptedQ(s string, present bool) (q [numEncodings]int) {
	q[encIdentity] = 1
	if !present {
		return q
	}
	named := [numEncodings]bool{}
	star := -1
	for s != "" {
		var item string
		item, s = nextItem(s, ',')
		if item == "" {
			continue
		}
		coding, params := item, ""
		if i := strings.IndexByte(item, ';'); i >= 0 {
			coding, params = trimOWS(item[:i]), item[i+1:]
		}
		qv := parseQ(params)
		switch {
		case strings.EqualFold(coding, "gzip"), strings.EqualFold(coding, "x-gzip"):
			q[encGzip], named[encGzip] = max(q[encGzip], qv), true
		case strings.EqualFold(coding, "br"):
			q[encBrotli], named[encBrotli] = max(q[encBrotli], qv), true
		case strings.EqualFold(coding, "identity"):
			q[encIdentity], named[encIdentity] = qv, true
		case coding == "*":
			star = qv
		}
	}
	if star >= 0 {
		for e := range q {
			if !named[e] {
				q[e] = star
			}
		}
	}
	return q
}

// parseQ returns the q parameter of an Accept-Encoding item in thousandths; a
// missing or malformed q counts as 1 (malformed ones are rare and refusing the
// coding would be the worse mistake).
func parseQ(params string) int {
	for params != "" {
		var p string
		p, params = nextItem(params, ';')
		if len(p) < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=' {
			continue
		}
		v := p[2:]
		if v == "" {
			return 1000
		}
		switch v[0] {
		case '1':
			return 1000
		case '0':
		default:
			return 1000
		}
		n, mul := 0, 100
		if len(v) > 1 && v[1] == '.' {
			for i := 2; i < len(v) && i < 5; i++ {
				c := v[i]
				if c < '0' || c > '9' {
					return 1000
				}
				n += int(c-'0') * mul
				mul /= 10
			}
		}
		return n
	}
	return 1000
}

// chooseEncoding picks the coding to send among those available (a bitmask of
// 1<<enc) for the Accept-Encoding value s. It returns -1 when the client accepts
// none of them, identity included.
func chooseEncoding(s string, present bool, available uint8) int {
	q := acceptedQ(s, present)
	best, bestQ := -1, 0
	for _, e := range [...]int{encBrotli, encGzip, encIdentity} {
		if available&(1<<e) == 0 || q[e] <= 0 {
			continue
		}
		if q[e] > bestQ {
			best, bestQ = e, q[e]
		}
	}
	return best
}

// etagMatch reports whether the comma-separated entity-tag list (or "*") in s
// matches etag. Weak comparison (If-None-Match) ignores W/ on either side; strong
// comparison (If-Match, If-Range) never matches a weak tag.
func etagMatch(s, etag string, weak bool) bool {
	s = trimOWS(s)
	if s == "*" {
		return true
	}
	etagWeak := strings.HasPrefix(etag, "W/")
	if etagWeak {
		if !weak {
			return false
		}
		etag = etag[2:]
	}
	for s != "" {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		isWeak := false
		if strings.HasPrefix(s, "W/") {
			isWeak, s = true, s[2:]
		}
		if s == "" || s[0] != '"' {
			return false // malformed list: treat as no match rather than guess
		}
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return false
		}
		tag := s[:end+2]
		s = s[end+2:]
		if tag == etag && (weak || !isWeak) {
			return true
		}
	}
	return false
}
