package accesslog

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// quotedCombined is the Combined Log Format with Apache's and nginx's escaping
// inside the quoted fields (\" and \\ and \xHH), as log analysers read it.
var quotedCombined = regexp.MustCompile(`^(\S+) (-) (\S+) \[([^]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"( "aborted=((?:[^"\\]|\\.)*)")?$`)

// unescape undoes appendEscaped: a parser gets every byte the client sent back.
func unescape(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\'):
			b.WriteByte(s[i+1])
			i++
		case i+3 < len(s) && s[i+1] == 'x':
			n, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil {
				t.Fatalf("bad escape in %q", s)
			}
			b.WriteByte(byte(n))
			i += 3
		default:
			t.Fatalf("lone backslash in %q", s)
		}
	}
	return b.String()
}

// What a request controls reaches the log through the method, the request target,
// the protocol, the Referer, the User-Agent and the user name of basic auth (a
// name from the htpasswd file, but one with a space would still shift fields). None of it may end a
// line, open a field or put a byte in the log that a terminal or a line splitter
// (Python's splitlines breaks at \x1c-\x1e, \x85, U+2028 and U+2029) acts on.
func TestEscapingStopsForgedLines(t *testing.T) {
	hostile := []struct {
		name, value string
	}{
		{"CR LF and a forged line", "x\r\n127.0.0.1 - - [01/Jan/2026:00:00:00 +0000] \"GET /admin HTTP/1.1\" 200 1 \"-\" \"-\""},
		{"lone LF", "a\nb"},
		{"lone CR", "a\rb"},
		{"quote closing the field", `a" 200 1 "-" "forged`},
		{"backslash before a quote", `a\" "b`},
		{"trailing backslash", `a\`},
		{"NUL, ESC and DEL", "a\x00b\x1b[31mred\x7f"},
		{"file, group and record separators", "a\x1cb\x1dc\x1ed"},
		{"vertical tab and form feed", "a\x0bb\x0cc"},
		{"tab", "a\tb"},
		{"NEL (U+0085)", "a\u0085b"},
		{"line and paragraph separators", "a\u2028b\u2029c"},
		{"C1 control CSI as a raw byte", "a\x9b31mb"},
		{"invalid UTF-8", "a\xff\xfe\xc3b"},
		{"UTF-8 text", "café ✓"},
		{"JSON closing the string", `","status":200,"x":"`},
		{"HTML", `<script>&</script>`},
	}
	fields := []struct {
		name string
		set  func(r *Record, v string)
		get  func(m []string) string // from quotedCombined's submatches
		key  string                  // JSON key
	}{
		{"method", func(r *Record, v string) { r.Method = v }, func(m []string) string { return strings.SplitN(m[5], " ", 3)[0] }, "method"},
		{"request target", func(r *Record, v string) { r.URI = v }, nil, "uri"},
		{"referer", func(r *Record, v string) { r.Referer = v }, func(m []string) string { return m[8] }, "referer"},
		{"user agent", func(r *Record, v string) { r.UserAgent = v }, func(m []string) string { return m[9] }, "user_agent"},
		{"host", func(r *Record, v string) { r.Host = v }, nil, "host"},
		{"user", func(r *Record, v string) { r.User = v }, func(m []string) string { return m[3] }, "user"},
		{"abort reason", func(r *Record, v string) { r.Aborted = v }, func(m []string) string { return m[11] }, "aborted"},
	}
	base := Record{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), RemoteAddr: "192.0.2.1:5555", Method: "GET",
		URI: "/x", Proto: "HTTP/1.1", Host: "example.com", Status: 200, Bytes: 10, Referer: "-", UserAgent: "curl/8",
		Site: "example.com"}
	for _, f := range fields {
		for _, h := range hostile {
			t.Run(f.name+"/"+h.name, func(t *testing.T) {
				r := base
				f.set(&r, h.value)

				line := AppendCombined(nil, &r)
				for i, c := range line {
					if c < 0x20 || c >= 0x7f {
						t.Fatalf("combined line has byte %#x at %d: %q", c, i, line)
					}
				}
				m := quotedCombined.FindStringSubmatch(string(line))
				if m == nil {
					t.Fatalf("%q is not one Combined Log Format line", line)
				}
				if m[1] != "192.0.2.1" || m[6] != "200" || m[7] != "10" {
					t.Errorf("fields after the hostile one moved: %q", m[1:])
				}
				if f.get != nil {
					if got := unescape(t, f.get(m)); got != h.value && !(f.name == "method" && strings.Contains(h.value, " ")) {
						t.Errorf("the field reads back as %q, want %q", got, h.value)
					}
				}
				if got := unescape(t, m[5]); got != r.Method+" "+r.URI+" "+r.Proto {
					t.Errorf("request line reads back as %q", got)
				}

				js := AppendJSON(nil, &r)
				if bytes.ContainsAny(js, "\r\n\u0085\u2028\u2029") || bytes.ContainsFunc(js, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
					t.Fatalf("JSON line has a raw line break or control character: %q", js)
				}
				var obj map[string]any
				if err := json.Unmarshal(js, &obj); err != nil {
					t.Fatalf("%v: %s", err, js)
				}
				keys := slices.Sorted(func(yield func(string) bool) {
					for k := range obj {
						if !yield(k) {
							return
						}
					}
				})
				want := []string{"aborted", "bytes", "duration_ms", "host", "method", "proto", "referer", "remote_addr", "site", "status", "time", "uri", "user_agent"}
				if r.Aborted == "" {
					want = slices.DeleteFunc(want, func(k string) bool { return k == "aborted" })
				}
				if r.User != "" {
					want = append(want, "user")
					slices.Sort(want)
				}
				if !slices.Equal(keys, want) || obj["status"] != float64(200) {
					t.Errorf("JSON keys %v status %v, want %v and 200", keys, obj["status"], want)
				}
				// Every byte reads back, but for invalid UTF-8, which becomes U+FFFD.
				wantValue := string([]rune(h.value))
				if got := obj[f.key]; got != wantValue {
					t.Errorf("JSON %s = %q, want %q", f.key, got, wantValue)
				}
			})
		}
	}
}

// Whatever the request line and headers hold, a record is one line of printable
// ASCII in the combined format that reads back byte for byte, and one JSON object
// on one line.
func FuzzRecordIsOneLine(f *testing.F) {
	f.Add("GET", "/x", "curl/8")                         // an ordinary request
	f.Add("GET", "/\r\n1.2.3.4 - - [x] \"GET /", `a"b\`) // a forged line, a quote, a backslash
	f.Add("G\x00T", "/\xff\xfe", "\u0085\u2028\x9b\x7f") // NUL, invalid UTF-8, NEL, LS, CSI, DEL
	f.Fuzz(func(t *testing.T, method, uri, ua string) {
		r := Record{Time: time.Unix(0, 0).UTC(), RemoteAddr: "192.0.2.1:1", Method: method, URI: uri, Proto: "HTTP/1.1",
			Status: 200, UserAgent: ua}
		line := AppendCombined(nil, &r)
		if i := bytes.IndexFunc(line, func(c rune) bool { return c < 0x20 || c >= 0x7f }); i >= 0 {
			t.Fatalf("byte %#x at %d in %q", line[i], i, line)
		}
		m := quotedCombined.FindStringSubmatch(string(line))
		if m == nil {
			t.Fatalf("%q is not one Combined Log Format line", line)
		}
		if got := unescape(t, m[9]); got != orDash(ua) {
			t.Errorf("user agent reads back as %q, want %q", got, ua)
		}
		if got := unescape(t, m[5]); got != method+" "+uri+" HTTP/1.1" {
			t.Errorf("request line reads back as %q", got)
		}
		js := AppendJSON(nil, &r)
		if bytes.ContainsAny(js, "\r\n\u0085\u2028\u2029\x7f") || !json.Valid(js) {
			t.Fatalf("not one JSON line: %q", js)
		}
	})
}
