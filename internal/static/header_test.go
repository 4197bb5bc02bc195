package static

import (
	"strings"
	"testing"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		name   string
		header string
		size   int64
		want   []byteRange
		res    rangeResult
	}{
		{"single", "bytes=0-9", 100, []byteRange{{0, 10}}, rangeSatisfiable},
		{"unit case-insensitive", "Bytes=0-9", 100, []byteRange{{0, 10}}, rangeSatisfiable},
		{"whitespace", " bytes=0-9 ,\t200-209 ", 1000, []byteRange{{0, 10}, {200, 210}}, rangeSatisfiable},
		{"gap below coalesce threshold merged", "bytes=0-9,50-59", 1000, []byteRange{{0, 60}}, rangeSatisfiable},
		{"distant kept apart", "bytes=0-9,500-509", 1000, []byteRange{{0, 10}, {500, 510}}, rangeSatisfiable},
		{"sorted", "bytes=500-509,0-9", 1000, []byteRange{{0, 10}, {500, 510}}, rangeSatisfiable},
		{"contained merged", "bytes=0-999,10-20", 1000, []byteRange{{0, 1000}}, rangeSatisfiable},
		{"open", "bytes=990-", 1000, []byteRange{{990, 1000}}, rangeSatisfiable},
		{"suffix", "bytes=-5", 1000, []byteRange{{995, 1000}}, rangeSatisfiable},
		{"suffix past start", "bytes=-5000", 1000, []byteRange{{0, 1000}}, rangeSatisfiable},
		{"end clamped", "bytes=10-5000", 1000, []byteRange{{10, 1000}}, rangeSatisfiable},
		{"empty elements skipped", "bytes=,0-1,,", 10, []byteRange{{0, 2}}, rangeSatisfiable},
		{"start at size", "bytes=1000-", 1000, nil, rangeUnsatisfiable},
		{"empty file", "bytes=0-", 0, nil, rangeUnsatisfiable},
		{"suffix of empty file", "bytes=-1", 0, nil, rangeUnsatisfiable},
		{"zero suffix", "bytes=-0", 10, nil, rangeUnsatisfiable},
		{"no unit", "0-9", 100, nil, rangeIgnore},
		{"other unit", "pages=1-2", 100, nil, rangeIgnore},
		{"no specs", "bytes=", 100, nil, rangeIgnore},
		{"no dash", "bytes=5", 100, nil, rangeIgnore},
		{"letters", "bytes=a-b", 100, nil, rangeIgnore},
		{"reversed", "bytes=9-0", 100, nil, rangeIgnore},
		{"negative", "bytes=--5", 100, nil, rangeIgnore},
		{"overflow", "bytes=99999999999999999999-", 100, nil, rangeIgnore},
		{"plus sign", "bytes=+1-2", 100, nil, rangeIgnore},
		{"too many parts", "bytes=" + strings.Repeat("0-0,", 4) + "0-0", 100, nil, rangeIgnore},
		{"at the limit", "bytes=" + strings.Repeat("0-0,", 3) + "0-0", 100, []byteRange{{0, 1}}, rangeSatisfiable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, res := parseRange(tc.header, tc.size, 4)
			if res != tc.res || !equalRanges(got, tc.want) {
				t.Fatalf("parseRange(%q, %d) = %v, %d; want %v, %d", tc.header, tc.size, got, res, tc.want, tc.res)
			}
		})
	}
}

func equalRanges(a, b []byteRange) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func FuzzParseRange(f *testing.F) {
	// Seeds: the shapes of real clients (download resumers, PDF viewers, video
	// players) and the malformed and hostile ones.
	for _, s := range []string{
		"bytes=0-",                    // resume from start
		"bytes=1000-1999",             // PDF.js chunk
		"bytes=-500",                  // suffix: file trailers
		"bytes=0-0,-1",                // first and last byte probe
		"bytes=0-1,2-3,4-5",           // adjacent parts
		"bytes=5-1",                   // reversed
		"bytes=0-,0-,0-,0-,0-,0-,0-",  // overlap amplification
		"bytes=18446744073709551615-", // overflow
		"bytes= , ,",                  // only empty elements
		"BYTES=1-2",                   // unit case
		"items=0-1",                   // other unit
	} {
		f.Add(s, int64(1000))
	}
	f.Fuzz(func(t *testing.T, header string, size int64) {
		if size < 0 {
			size = -size
			if size < 0 {
				return
			}
		}
		const maxParts = 16
		ranges, res := parseRange(header, size, maxParts)
		if res != rangeSatisfiable {
			if ranges != nil {
				t.Fatalf("result %d with ranges %v", res, ranges)
			}
			return
		}
		if len(ranges) == 0 || len(ranges) > maxParts {
			t.Fatalf("%d ranges", len(ranges))
		}
		var total int64
		for i, r := range ranges {
			if r.start < 0 || r.start >= r.end || r.end > size {
				t.Fatalf("range %v outside [0,%d)", r, size)
			}
			if i > 0 && r.start <= ranges[i-1].end {
				t.Fatalf("ranges %v overlap or are unsorted", ranges)
			}
			total += r.length()
		}
		if total > size {
			t.Fatalf("ranges %v total %d bytes, more than the %d-byte file", ranges, total, size)
		}
	})
}

func TestChooseEncoding(t *testing.T) {
	all := uint8(1<<encIdentity | 1<<encGzip | 1<<encBrotli)
	gzOnly := uint8(1<<encIdentity | 1<<encGzip)
	tests := []struct {
		name    string
		header  string
		present bool
		avail   uint8
		want    int
	}{
		{"absent header", "", false, all, encIdentity},
		{"empty header", "", true, all, encIdentity},
		{"browser", "gzip, deflate, br, zstd", true, all, encBrotli},
		{"gzip only offered", "gzip, deflate, br", true, gzOnly, encGzip},
		{"x-gzip alias", "x-gzip", true, all, encGzip},
		{"case-insensitive", "GZIP", true, all, encGzip},
		{"q ranks", "br;q=0.2, gzip;q=0.8", true, all, encGzip},
		{"q with spaces", "br ; q=0.9 , gzip ; q=0.1", true, all, encBrotli},
		{"q=0 excludes", "br;q=0, gzip;q=0", true, all, encIdentity},
		{"q=0.000 excludes", "br;q=0.000", true, all, encIdentity},
		{"identity preferred by q", "identity;q=1, gzip;q=0.5", true, all, encIdentity},
		{"star", "*", true, all, encBrotli},
		{"star with br refused", "*, br;q=0", true, all, encGzip},
		{"identity refused, nothing else", "identity;q=0", true, 1 << encIdentity, -1},
		{"star refuses identity", "*;q=0", true, all, -1},
		{"star refused but gzip named", "*;q=0, gzip", true, all, encGzip},
		{"unknown codings only", "zstd, compress", true, all, encIdentity},
		{"malformed q counts as 1", "br;q=abc", true, all, encBrotli},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := chooseEncoding(tc.header, tc.present, tc.avail); got != tc.want {
				t.Fatalf("chooseEncoding(%q) = %d, want %d", tc.header, got, tc.want)
			}
		})
	}
}

func FuzzChooseEncoding(f *testing.F) {
	// Seeds: real browser and tool headers, q-value forms and odd spacing.
	for _, s := range []string{
		"gzip, deflate, br, zstd", // Chrome
		"gzip, deflate",           // curl --compressed
		"br;q=1.0, gzip;q=0.8, *;q=0.1",
		"identity;q=0, *;q=0",
		";;;q=,q=1.5,,",
		"gzip;q=0.5;level=9",
	} {
		f.Add(s, uint8(7))
	}
	f.Fuzz(func(t *testing.T, header string, avail uint8) {
		avail &= 7
		got := chooseEncoding(header, true, avail)
		if got == -1 {
			return
		}
		if got < 0 || got >= numEncodings || avail&(1<<got) == 0 {
			t.Fatalf("chose %d, not among available %03b", got, avail)
		}
	})
}

func TestETagMatch(t *testing.T) {
	const tag = `"abc-1"`
	tests := []struct {
		name   string
		header string
		weak   bool
		want   bool
	}{
		{"exact strong", `"abc-1"`, false, true},
		{"exact weak", `"abc-1"`, true, true},
		{"weak form, weak comparison", `W/"abc-1"`, true, true},
		{"weak form, strong comparison", `W/"abc-1"`, false, false},
		{"list", `"x", "abc-1"`, true, true},
		{"list without spaces", `"x","abc-1"`, false, true},
		{"star", `*`, false, true},
		{"other", `"abc-2"`, true, false},
		{"unquoted", `abc-1`, true, false},
		{"unterminated", `"abc-1`, true, false},
		{"prefix only", `"abc"`, true, false},
		{"empty", ``, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := etagMatch(tc.header, tag, tc.weak); got != tc.want {
				t.Fatalf("etagMatch(%q, weak=%v) = %v, want %v", tc.header, tc.weak, got, tc.want)
			}
		})
	}
}

func FuzzETagMatch(f *testing.F) {
	// Seeds: single tags, lists, weak forms, star, and broken quoting.
	for _, s := range []string{`"a"`, `W/"a", "b"`, `*`, `"a`, `W/`, `,,,"a",`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		etagMatch(header, `"a"`, true)
		etagMatch(header, `"a"`, false)
		// Any well-formed tag matches itself appended to whatever list precedes it,
		// if that list was well formed; a bare tag always matches itself.
		if !strings.ContainsAny(header, "\"") {
			tag := `"` + header + `"`
			if !etagMatch(tag, tag, false) {
				t.Fatalf("%s does not match itself", tag)
			}
		}
	})
}

func FuzzValidPath(f *testing.F) {
	// Seeds: traversal forms as net/http hands them over (already decoded once).
	for _, s := range []string{
		"/", "/a/b.txt", "/../etc/passwd", "/a/../../b", "/.git/config",
		"/.well-known/acme-challenge/x", "/a\\..\\b", "/a\x00b", "//a//b/", "/./a", "/%2e%2e/",
	} {
		f.Add(s)
	}
	h := &Handler{opts: Options{Index: []string{"index.html"}}}
	f.Fuzz(func(t *testing.T, p string) {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		status, _ := h.validPath(p)
		if status != 0 {
			return
		}
		name := fileName(p)
		if strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\x00\\") {
			t.Fatalf("validPath accepted %q, file name %q", p, name)
		}
		for _, seg := range strings.Split(name, "/") {
			if seg == ".." || seg == "" || (seg != "." && strings.HasPrefix(seg, ".") && seg != ".well-known") {
				t.Fatalf("validPath accepted %q, file name %q has segment %q", p, name, seg)
			}
		}
	})
}
