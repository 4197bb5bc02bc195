package xsendfile

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	h := &Handler{root: "/srv/files"}
	cases := []struct {
		name, header, value, want string
	}{
		{"absolute inside", "X-Sendfile", "/srv/files/a/b.zip", "/a/b.zip"},
		{"absolute, cleaned inside", "X-Sendfile", "/srv/files/a/../b.zip", "/b.zip"},
		{"absolute climbing out", "X-Sendfile", "/srv/files/../etc/passwd", ""},
		{"absolute outside", "X-Sendfile", "/etc/passwd", ""},
		{"sibling with the root as prefix", "X-Sendfile", "/srv/files2/x", ""},
		{"the root itself", "X-Sendfile", "/srv/files", ""},
		{"relative", "X-Sendfile", "a/b.zip", ""},
		{"NUL", "X-Sendfile", "/srv/files/a\x00b", ""},
		{"accel path", "X-Accel-Redirect", "/a/b.zip", "/a/b.zip"},
		{"accel query dropped", "X-Accel-Redirect", "/a/b.zip?x=1", "/a/b.zip"},
		{"accel climbing out", "X-Accel-Redirect", "/../etc/passwd", ""},
		{"accel dot dot inside a name is fine", "X-Accel-Redirect", "/a..b", "/a..b"},
		{"accel relative", "X-Accel-Redirect", "a/b.zip", ""},
		{"accel backslash", "X-Accel-Redirect", "/..\\..\\x", ""},
		{"accel root", "X-Accel-Redirect", "/", ""},
	}
	for _, c := range cases {
		got, ok := h.resolve(c.header, c.value)
		if !ok {
			got = ""
		}
		if got != c.want {
			t.Errorf("%s: resolve(%s: %q) = %q, want %q", c.name, c.header, c.value, got, c.want)
		}
	}
}

// FuzzResolve checks that whatever an application names, the path served is
// inside the root: it starts with "/" and no segment climbs.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/srv/files/a", "/srv/files/../x", "/a/../../b", "/", "", "..", "/a\\b", "/srv/files/./a//b"} {
		f.Add(true, s)
		f.Add(false, s)
	}
	h := &Handler{root: "/srv/files"}
	f.Fuzz(func(t *testing.T, sendfile bool, v string) {
		header := "X-Accel-Redirect"
		if sendfile {
			header = "X-Sendfile"
		}
		got, ok := h.resolve(header, v)
		if !ok {
			return
		}
		if !strings.HasPrefix(got, "/") || !filepath.IsLocal(strings.TrimPrefix(got, "/")) {
			t.Fatalf("resolve(%s: %q) = %q: not a path inside the root", header, v, got)
		}
		for _, seg := range strings.Split(got, "/") {
			if seg == ".." {
				t.Fatalf("resolve(%s: %q) = %q: climbs", header, v, got)
			}
		}
	})
}
