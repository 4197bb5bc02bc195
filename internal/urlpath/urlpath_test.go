package urlpath

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"root", "/", "/", nil},
		{"plain", "/a/b.txt", "/a/b.txt", nil},
		{"trailing slash kept", "/a/b/", "/a/b/", nil},
		{"dots inside names are no segments", "/a..b/.c/c./...", "/a..b/.c/c./...", nil},
		{"dot segment", "/a/./b", "/a/b", nil},
		{"dot-dot segment", "/a/b/../c", "/a/c", nil},
		{"final dot-dot leaves a slash", "/a/b/..", "/a/", nil},
		{"final dot leaves a slash", "/a/.", "/a/", nil},
		{"dot-dot to the root", "/proxy/../a.txt", "/a.txt", nil},
		{"above the root", "/../a.txt", "", ErrAboveRoot},
		{"above the root later", "/a/../../b", "", ErrAboveRoot},
		{"merged slashes", "//a///b//", "/a/b/", nil},
		{"merged before dots", "/a//..", "/", nil},
		{"escaped dots", "/a/%2e%2e/b", "/b", nil},
		{"escaped dots, upper case", "/a/%2E%2E/b", "/b", nil},
		{"half escaped dots", "/a/.%2e/b", "/b", nil},
		{"escaped dots and escaped slash", "/cgi-bin/%2e%2e%2f%2e%2e%2fetc/passwd", "", ErrAboveRoot},
		{"dot-dot then escaped slash", "/a/b/..%2fc", "/a/c", nil},
		{"escaped slash then dot-dot", "/a/b%2F..%2Fc", "/a/c", nil},
		{"escaped slash away from dots kept", "/a/b%2Fc", "/a/b%2Fc", nil},
		{"lower-case escaped slash kept as sent", "/a/b%2fc/", "/a/b%2fc/", nil},
		{"empty piece between escaped slashes kept", "/a/%2F%2Fb", "/a/%2F%2Fb", nil},
		{"dot-dot with path parameter", "/a/b/..;/c", "/a/c", nil},
		{"dot-dot with named parameter", "/a/b/..;jsessionid=1/c", "/a/c", nil},
		{"dot with parameter", "/a/.;x/b", "/a/b", nil},
		{"parameter on a name kept", "/a;x/b", "/a;x/b", nil},
		{"unreserved decoded", "/%41%7e%2D%5F%30", "/A~-_0", nil},
		{"reserved kept", "/a%3Fb%23c%25d%20e", "/a%3Fb%23c%25d%20e", nil},
		{"decoded once", "/%252e%252e/x", "/%252e%252e/x", nil},
		{"non-ASCII kept", "/caf%C3%A9", "/caf%C3%A9", nil},
		{"not absolute", "a/b", "", ErrNotAbsolute},
		{"empty", "", "", ErrNotAbsolute},
		{"truncated escape", "/a%2", "", ErrBadEscape},
		{"bad escape", "/a%zz", "", ErrBadEscape},
		{"double percent", "/%%32%65", "", ErrBadEscape},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Clean(tc.in)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("Clean(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestCleanPlainPathDoesNotAllocate(t *testing.T) {
	p := "/static/css/site.css"
	if n := testing.AllocsPerRun(100, func() { Clean(p) }); n != 0 {
		t.Errorf("Clean of a normal path: %v allocations", n)
	}
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{
		"/",                     // the root
		"/a/b/../c",             // a plain dot-dot
		"/a/./b//c/",            // dot and repeated slashes
		"/a/%2e%2e/b",           // escaped dots
		"/a/b/..%2f..%2fc",      // dots with escaped slashes
		"/a%2F..%2F",            // an escaped slash before dots
		"/a/..;x/b",             // a path parameter on dots
		"/%41%2F%252e",          // unreserved, reserved, double-escaped
		"/..",                   // above the root
		"/a/%2F%2F.%2F..%2F%2e", // escaped slashes around dots
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Clean(in)
		if err != nil {
			return
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("Clean(%q) = %q: not absolute", in, out)
		}
		if strings.Contains(out, "//") {
			t.Fatalf("Clean(%q) = %q: has //", in, out)
		}
		if len(out) > len(in) {
			t.Fatalf("Clean(%q) = %q: longer than its input", in, out)
		}
		for _, seg := range strings.Split(out, "/") {
			if isDot([]byte(seg)) != 0 {
				t.Fatalf("Clean(%q) = %q: dot segment %q", in, out, seg)
			}
		}
		again, err := Clean(out)
		if err != nil || again != out {
			t.Fatalf("Clean(Clean(%q)) = %q, %v; want %q", in, again, err, out)
		}
		// What a backend that decodes the whole path sees.
		dec, err := url.PathUnescape(out)
		if err != nil {
			t.Fatalf("Clean(%q) = %q: %v", in, out, err)
		}
		for _, seg := range strings.Split(dec, "/") {
			if seg == ".." || strings.HasPrefix(seg, "..;") {
				t.Fatalf("Clean(%q) = %q decodes to %q: a .. segment", in, out, dec)
			}
		}
	})
}
