// Package httpfield checks the syntax of HTTP header fields (RFC 9110 §5.1, §5.5).
// Every gateway applies the same rule to the headers it passes between a backend and
// a client — a CGI script, php-fpm or a WSGI app must never get a bad name, a CR, LF
// or NUL through to the client — so the rule lives here once.
package httpfield

import "strings"

// ValidName reports whether b is a token, the syntax of a field name.
func ValidName[T ~string | ~[]byte](b T) bool {
	if len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); i++ {
		if !tokenChar[b[i]] {
			return false
		}
	}
	return true
}

// ValidValue reports whether b holds no control byte other than HTAB: a NUL, CR or
// LF in a value could split or truncate the header the client sees. obs-text
// (0x80-0xff) is allowed, as RFC 9110 does.
func ValidValue[T ~string | ~[]byte](b T) bool {
	for i := 0; i < len(b); i++ {
		if c := b[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// PlainName reports whether name is made of ASCII letters, digits and "-" only,
// the names a request header may have to reach an application: CGI-style
// gateways map "-" to "_" and PHP maps "." to "_" as well, so "X_Auth_User" or
// "X-Auth.User" would arrive as the "X-Auth-User" a proxy in front vouches for.
// Apache drops the others before its gateways, nginx before proxying
// (underscores_in_headers off).
func PlainName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !plainChar[name[i]] {
			return false
		}
	}
	return true
}

var plainChar = AlnumAnd("-")

// IsTokenChar reports whether c may appear in a token.
func IsTokenChar(c byte) bool { return tokenChar[c] }

var tokenChar = AlnumAnd("!#$%&'*+-.^_`|~")

// AlnumAnd is a byte table that holds the ASCII letters and digits and the bytes
// of extra: the shape of every character class in RFC 9110 and RFC 3986.
func AlnumAnd(extra string) (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for i := 0; i < len(extra); i++ {
		t[extra[i]] = true
	}
	return t
}

// HasToken reports whether the comma-separated list v (a Connection field, say)
// holds token, compared case-insensitively, as RFC 9110 §5.6.1 reads lists.
func HasToken(v, token string) bool {
	for v != "" {
		var item string
		item, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.Trim(item, " \t"), token) {
			return true
		}
	}
	return false
}
