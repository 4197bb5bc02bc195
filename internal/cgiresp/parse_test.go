package cgiresp

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"gantry/internal/httpfield"
)

// A block of n bytes, the empty line included: X: fields, then padding in one
// last field.
func blockOf(n int) string {
	const line = "X-Pad: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\n" // 55 bytes
	var b strings.Builder
	for b.Len()+len(line)+len("Y: \n\n") <= n {
		b.WriteString(line)
	}
	b.WriteString("Y: " + strings.Repeat("z", n-b.Len()-len("Y: \n\n")) + "\n\n")
	return b.String()
}

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		nph      bool
		status   int  // Response.Status
		code     int  // Response.Code(): what the client gets
		local    bool // Response.LocalRedirect()
		header   http.Header
		location string
		used     int    // bytes of the header block; -1: the whole input
		err      string // "" for success
	}{
		// From internal/cgi/header_test.go.
		{name: "crlf", in: "Content-Type: text/html\r\n\r\nbody", code: 200, header: http.Header{"Content-Type": {"text/html"}}, used: 27},
		{name: "lf", in: "Content-Type: text/html\n\nbody", code: 200, header: http.Header{"Content-Type": {"text/html"}}, used: 25},
		{name: "mixed endings", in: "A: 1\r\nB: 2\n\r\n", code: 200, header: http.Header{"A": {"1"}, "B": {"2"}}, used: -1},
		{name: "status with reason", in: "Status: 404 Not Found\n\n", status: 404, code: 404, header: http.Header{}, used: -1},
		{name: "status bare", in: "Status: 503\n\n", status: 503, code: 503, header: http.Header{}, used: -1},
		{name: "canonical names", in: "x-custom-thing: v\n\n", code: 200, header: http.Header{"X-Custom-Thing": {"v"}}, used: -1},
		{name: "values trimmed", in: "X: \t v \t\n\n", code: 200, header: http.Header{"X": {"v"}}, used: -1},
		{name: "empty value", in: "X:\n\n", code: 200, header: http.Header{"X": {""}}, used: -1},
		{name: "repeated fields", in: "Set-Cookie: a\nSet-Cookie: b\n\n", code: 200, header: http.Header{"Set-Cookie": {"a", "b"}}, used: -1},
		// Disagreement: the CGI host unfolded this to "a b c", the FastCGI client refused it.
		{name: "folded", in: "X: a\n b\n\tc\n\n", err: "continuation line"},
		{name: "obs-text allowed", in: "X: caf\xc3\xa9\n\n", code: 200, header: http.Header{"X": {"caf\xc3\xa9"}}, used: -1},
		{name: "location", in: "Location: /x?y\n\n", code: 302, local: true, location: "/x?y", header: http.Header{"Location": {"/x?y"}}, used: -1},
		{name: "hop-by-hop dropped", in: "Connection: close\nTransfer-Encoding: chunked\nKeep-Alive: 5\nUpgrade: h2c\n\n", code: 200, header: http.Header{}, used: -1},
		{name: "content-length kept", in: "Content-Length: 12\n\n", code: 200, header: http.Header{"Content-Length": {"12"}}, used: -1},
		{name: "nph status line", in: "HTTP/1.1 200 OK\r\nX: y\r\n\r\n", nph: true, status: 200, code: 200, header: http.Header{"X": {"y"}}, used: -1},
		{name: "incomplete", in: "Content-Type: text/html\n", err: "incomplete"},
		{name: "incomplete empty", in: "", err: "incomplete"},
		{name: "no colon", in: "hello world\n\n", err: "no field name"},
		{name: "empty name", in: ": v\n\n", err: "no field name"},
		{name: "space in name", in: "Bad Name: v\n\n", err: "not a token"},
		{name: "space before colon", in: "X : v\n\n", err: "not a token"},
		{name: "NUL in value", in: "X: a\x00b\n\n", err: "control byte"},
		{name: "CR in value", in: "X: a\rSet-Cookie: evil\n\n", err: "control byte"},
		{name: "DEL in value", in: "X: a\x7fb\n\n", err: "control byte"},
		{name: "high byte in name", in: "X\xff: v\n\n", err: "not a token"},
		{name: "status word", in: "Status: OK\n\n", err: "bogus Status"},
		{name: "status too long", in: "Status: 2000\n\n", err: "bogus Status"},
		{name: "status informational", in: "Status: 100 Continue\n\n", err: "not a final"},
		{name: "status 600", in: "Status: 600\n\n", err: "not a final"},
		{name: "status twice", in: "Status: 200\nStatus: 404\n\n", err: "more than one Status"},
		{name: "status signed", in: "Status: +20\n\n", err: "bogus Status"},
		{name: "content-length negative", in: "Content-Length: -1\n\n", err: "bogus Content-Length"},
		{name: "content-length conflict", in: "Content-Length: 1\nContent-Length: 2\n\n", err: "conflicting"},
		{name: "location twice", in: "Location: /a\nLocation: /b\n\n", err: "more than one Location"},
		{name: "fold first", in: " X: v\n\n", err: "continuation line"},
		{name: "nph bad status line", in: "HTTP/2 200 OK\n\n", nph: true, err: "bogus nph status line"},
		{name: "nph with Status", in: "HTTP/1.0 200 OK\nStatus: 404\n\n", nph: true, err: "nph script sent a Status"},
		{name: "header too long", in: strings.Repeat("X: y\n", MaxHeaderBytes/5+1), err: "header longer than"},

		// From internal/fastcgi/response_test.go (TestParseHeaderBlock).
		{name: "php default", in: "X-Powered-By: PHP/8.2\r\nContent-type: text/html; charset=UTF-8\r\n\r\n", code: 200,
			header: http.Header{"X-Powered-By": {"PHP/8.2"}, "Content-Type": {"text/html; charset=UTF-8"}}, used: -1},
		{name: "names canonicalized", in: "content-TYPE: text/plain\r\nETag: \"x\"\r\nx-custom-thing: 1\r\n\r\n", code: 200,
			header: http.Header{"Content-Type": {"text/plain"}, "Etag": {`"x"`}, "X-Custom-Thing": {"1"}}, used: -1},
		{name: "status with reason crlf", in: "Status: 404 Not Found\r\n\r\n", status: 404, code: 404, header: http.Header{}, used: -1},
		{name: "status without reason", in: "Status: 503\n\n", status: 503, code: 503, header: http.Header{}, used: -1},
		{name: "location without status is 302", in: "Location: /x\r\n\r\n", code: 302, local: true, location: "/x",
			header: http.Header{"Location": {"/x"}}, used: -1},
		{name: "location with status keeps it", in: "Status: 301 Moved\r\nLocation: /x\r\n\r\n", status: 301, code: 301, location: "/x",
			header: http.Header{"Location": {"/x"}}, used: -1},
		{name: "repeated headers kept", in: "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n", code: 200,
			header: http.Header{"Set-Cookie": {"a=1", "b=2"}}, used: -1},
		{name: "hop-by-hop dropped crlf", in: "Connection: close\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n", code: 200,
			header: http.Header{"X-A": {"1"}}, used: -1},
		{name: "space in name crlf", in: "Bad Name: x\r\n\r\n", err: "not a token"},
		{name: "no colon crlf", in: "garbage\r\n\r\n", err: "no field name"},
		{name: "folded line", in: "X-A: 1\r\n continued\r\n\r\n", err: "continuation line"},
		{name: "control byte in value", in: "X-A: a\x01b\r\n\r\n", err: "control byte"},
		{name: "NUL in value crlf", in: "X-A: a\x00b\r\n\r\n", err: "control byte"},
		{name: "bogus status", in: "Status: abc\r\n\r\n", err: "bogus Status"},
		{name: "status out of range", in: "Status: 999\r\n\r\n", err: "not a final"},
		{name: "informational status", in: "Status: 101\r\n\r\n", err: "not a final"},
		{name: "two statuses", in: "Status: 200\r\nStatus: 404\r\n\r\n", err: "more than one Status"},
		{name: "bad content-length", in: "Content-Length: -1\r\n\r\n", err: "bogus Content-Length"},
		{name: "conflicting content-length", in: "Content-Length: 1\r\nContent-Length: 2\r\n\r\n", err: "conflicting"},
		// From internal/fastcgi/response_test.go (TestHeaderEnd): where the block ends.
		{name: "end crlf", in: "A: b\r\n\r\nbody", code: 200, header: http.Header{"A": {"b"}}, used: 8},
		{name: "end lf", in: "A: b\n\nbody", code: 200, header: http.Header{"A": {"b"}}, used: 6},
		{name: "end empty block", in: "\r\nbody", code: 200, header: http.Header{}, used: 2},
		{name: "end missing", in: "A: b\r\n", err: "incomplete"},
		{name: "end half a crlf", in: "A: b\r\n\r", err: "incomplete"},

		// Where the two parsers disagreed, and the rules the gateways now share.
		// The old CGI parser refused a bad line before the block was whole; so does this one.
		{name: "bad line before the end", in: "hello world\n", err: "no field name"},
		{name: "bad second line before the end", in: "X: 1\r\nBad Name: 2\r\nY: 3", err: "not a token"},
		{name: "nph bad status line before the end", in: "HTTP/2 200 OK\n", nph: true, err: "bogus nph status line"},
		{name: "status twice before the end", in: "Status: 200\nStatus: 404\n", err: "more than one Status"},
		{name: "status tab reason", in: "Status: 200\tOK\r\n\r\n", status: 200, code: 200, header: http.Header{}, used: -1},
		{name: "status reason with control byte", in: "Status: 200 O\x01K\n\n", err: "control byte"},
		{name: "status two digits", in: "Status: 20\n\n", err: "bogus Status"},
		{name: "status dash separator", in: "Status: 200-OK\n\n", err: "bogus Status"},
		// Disagreement: the CGI host refused it, the FastCGI client passed it with a 200.
		{name: "empty location is a client redirect", in: "Location:\r\n\r\n", code: 302, header: http.Header{"Location": {""}}, used: -1},
		{name: "empty location with status", in: "Status: 302 Found\nLocation: \n\n", status: 302, code: 302,
			header: http.Header{"Location": {""}}, used: -1},
		{name: "empty location then another", in: "Location:\nLocation: /x\n\n", err: "more than one Location"},
		{name: "location twice crlf", in: "Location: /a\r\nLocation: http://evil.example/\r\n\r\n", err: "more than one Location"},
		{name: "content-length repeated equal", in: "Content-Length: 5\nContent-Length: 5\n\n", code: 200,
			header: http.Header{"Content-Length": {"5"}}, used: -1},
		{name: "content-length with leading zero differs", in: "Content-Length: 1\nContent-Length: 01\n\n", err: "conflicting"},
		{name: "content-length too big", in: "Content-Length: 9223372036854775808\n\n", err: "bogus Content-Length"},
		{name: "every hop-by-hop field dropped", in: "Connection: close\nKeep-Alive: 5\nProxy-Connection: close\n" +
			"Proxy-Authenticate: Basic\nProxy-Authorization: Basic eA==\nTE: trailers\nTrailer: X\n" +
			"Transfer-Encoding: chunked\nUpgrade: h2c\nX-Kept: 1\n\n", code: 200, header: http.Header{"X-Kept": {"1"}}, used: -1},
		{name: "client redirect", in: "Location: http://example.com/x\n\n", code: 302, location: "http://example.com/x",
			header: http.Header{"Location": {"http://example.com/x"}}, used: -1},
		{name: "scheme-relative is a client redirect", in: "Location: //evil.example/x\n\n", code: 302, location: "//evil.example/x",
			header: http.Header{"Location": {"//evil.example/x"}}, used: -1},
		{name: "backslash is a client redirect", in: "Location: /\\evil.example/x\n\n", code: 302, location: "/\\evil.example/x",
			header: http.Header{"Location": {"/\\evil.example/x"}}, used: -1},
		{name: "location root is local", in: "Location: /\n\n", code: 302, local: true, location: "/",
			header: http.Header{"Location": {"/"}}, used: -1},
		{name: "location with status 200 is no redirect", in: "Status: 200\nLocation: /x\n\n", status: 200, code: 200, location: "/x",
			header: http.Header{"Location": {"/x"}}, used: -1},
		{name: "nph status line tab", in: "HTTP/1.0 404\tNot Found\n\n", nph: true, status: 404, code: 404, header: http.Header{}, used: -1},
		{name: "nph status line 1xx", in: "HTTP/1.1 101 Switching Protocols\n\n", nph: true, err: "not a final"},
		{name: "nph empty status line", in: "\nX: y\n\n", nph: true, err: "bogus nph status line"},
		{name: "block at the limit", in: blockOf(MaxHeaderBytes) + "body", code: 200, used: MaxHeaderBytes},
		{name: "block one byte over the limit", in: blockOf(MaxHeaderBytes+1) + "body", err: "header longer than"},
		{name: "incomplete under the limit", in: blockOf(MaxHeaderBytes)[:MaxHeaderBytes-1], err: "incomplete"},
		{name: "incomplete at the limit", in: blockOf(MaxHeaderBytes + 1)[:MaxHeaderBytes], err: "header longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			parse := Parse
			if tc.nph {
				parse = ParseNPH
			}
			resp, n, err := parse([]byte(tc.in), h)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one containing %q", err, tc.err)
				}
				if errors.Is(err, ErrIncomplete) && len(h) != 0 {
					t.Errorf("incomplete block left fields in the header: %v", h)
				}
				return
			}
			if err != nil {
				t.Fatalf("err %v", err)
			}
			want := tc.used
			if want < 0 {
				want = len(tc.in)
			}
			if n != want {
				t.Errorf("used %d bytes, want %d", n, want)
			}
			if resp.Status != tc.status || resp.Location != tc.location {
				t.Errorf("status %d location %q, want %d %q", resp.Status, resp.Location, tc.status, tc.location)
			}
			if got := resp.Code(); got != tc.code {
				t.Errorf("code %d, want %d", got, tc.code)
			}
			if got := resp.LocalRedirect(); got != tc.local {
				t.Errorf("local redirect %v, want %v", got, tc.local)
			}
			if tc.header == nil { // a padded block: only its size matters
				return
			}
			if len(h) != len(tc.header) {
				t.Errorf("header %v, want %v", h, tc.header)
			}
			for k, v := range tc.header {
				if strings.Join(h[k], "|") != strings.Join(v, "|") || len(h[k]) != len(v) {
					t.Errorf("%s = %q, want %q", k, h[k], v)
				}
			}
		})
	}
}

// A field that repeats must not overwrite the value of another field: the values
// share one array.
func TestParseValuesIndependent(t *testing.T) {
	h := http.Header{}
	if _, _, err := Parse([]byte("A: 1\nB: 2\nA: 3\nC: 4\nB: 5\n\n"), h); err != nil {
		t.Fatal(err)
	}
	h["A"] = append(h["A"], "x")
	for k, want := range map[string]string{"A": "1|3|x", "B": "2|5", "C": "4"} {
		if got := strings.Join(h[k], "|"); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		in   string
		code int // 0: an error
	}{
		{"200 OK", 200},
		{"200", 200},
		{"404 Not Found", 404},
		{"599 x", 599},
		{"418\tI'm a teapot", 418},
		{"200 ", 200},
		{"199 x", 0},
		{"600", 0},
		{"20", 0},
		{"", 0},
		{"2OO OK", 0},
		{"200OK", 0},
		{"200 O\r\nSet-Cookie: x", 0},
		{"200 \x00", 0},
	}
	for _, tc := range tests {
		code, err := ParseStatus(tc.in)
		if tc.code == 0 {
			if err == nil {
				t.Errorf("ParseStatus(%q) = %d, want an error", tc.in, code)
			}
			continue
		}
		if err != nil || code != tc.code {
			t.Errorf("ParseStatus(%q) = %d, %v, want %d", tc.in, code, err, tc.code)
		}
	}
}

func TestIsHopByHop(t *testing.T) {
	for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		if !IsHopByHop(k) {
			t.Errorf("%s is not hop-by-hop", k)
		}
	}
	for _, k := range []string{"Content-Type", "Content-Length", "Location", "Set-Cookie", "Trailers", "connection"} {
		if IsHopByHop(k) {
			t.Errorf("%s is hop-by-hop", k)
		}
	}
}

// FuzzParse checks that no backend output can panic the parser or get a field with
// a control byte, a bad name, a hop-by-hop name, two Content-Lengths or an
// impossible status past it, and that an incomplete block is reported as such.
func FuzzParse(f *testing.F) {
	f.Add([]byte("Content-Type: text/html\r\n\r\nbody"), false)                      // the usual CGI script
	f.Add([]byte("X-Powered-By: PHP/8.2\r\nContent-type: text/html\r\n\r\n"), false) // PHP's default
	f.Add([]byte("Status: 302 Found\nLocation: /x\n\n"), false)                      // redirect
	f.Add([]byte("Location: /x?y\n\n"), false)                                       // local redirect
	f.Add([]byte("X: a\n b\n\n"), false)                                             // obs-fold
	f.Add([]byte("X: a\rSet-Cookie: y\n\n"), false)                                  // header injection
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), true)            // nph
	f.Add([]byte("Content-Length: 1\nContent-Length: 01\n\n"), false)                // smuggling
	f.Add([]byte("Status: 20\r\n\r\n"), false)                                       // short status
	f.Add([]byte("Status: 200\tOK\r\nConnection: close\r\n\r\n"), false)             // tab, hop-by-hop
	f.Add([]byte("A: b\r\n\r"), false)                                               // half a blank line
	f.Fuzz(func(t *testing.T, b []byte, nph bool) {
		parse := Parse
		if nph {
			parse = ParseNPH
		}
		h := http.Header{}
		resp, n, err := parse(b, h)
		if errors.Is(err, ErrIncomplete) {
			if len(h) != 0 || len(b) >= MaxHeaderBytes {
				t.Fatalf("incomplete with %d bytes and header %v", len(b), h)
			}
			return
		}
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) || n > MaxHeaderBytes || b[n-1] != '\n' {
			t.Fatalf("used %d of %d bytes", n, len(b))
		}
		if resp.Status != 0 && (resp.Status < 200 || resp.Status > 599) {
			t.Fatalf("status %d", resp.Status)
		}
		if code := resp.Code(); code < 200 || code > 599 {
			t.Fatalf("code %d", code)
		}
		if resp.LocalRedirect() && (resp.Location[0] != '/' || strings.HasPrefix(resp.Location, "//")) {
			t.Fatalf("local redirect to %q", resp.Location)
		}
		if loc, ok := h["Location"]; resp.Location != "" && !ok || ok && (len(loc) != 1 || loc[0] != resp.Location) {
			t.Fatalf("Location %q, header %q", resp.Location, h["Location"])
		}
		for k, vs := range h {
			if !httpfield.ValidName(k) || IsHopByHop(k) || k == "Status" || k != http.CanonicalHeaderKey(k) {
				t.Fatalf("field name %q passed", k)
			}
			for _, v := range vs {
				if !httpfield.ValidValue(v) {
					t.Fatalf("value %q passed", v)
				}
			}
		}
		if len(h["Content-Length"]) > 1 {
			t.Fatalf("two Content-Length values passed")
		}
	})
}

// BenchmarkParse parses as the gateways do: the CGI host into a new header, the
// FastCGI client into a pooled one it clears.
func BenchmarkParse(b *testing.B) {
	b.Run("cgi", func(b *testing.B) {
		in := []byte("Content-Type: text/html; charset=utf-8\r\nSet-Cookie: a=1\r\nCache-Control: no-store\r\n\r\nbody")
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := Parse(in, make(http.Header, 8)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("php", func(b *testing.B) {
		in := []byte("X-Powered-By: PHP/8.2.0\r\nContent-type: text/html; charset=UTF-8\r\n\r\nHello, World!")
		h := http.Header{}
		b.ReportAllocs()
		for b.Loop() {
			clear(h)
			if _, _, err := Parse(in, h); err != nil {
				b.Fatal(err)
			}
		}
	})
}
