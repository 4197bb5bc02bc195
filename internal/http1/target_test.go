package http1

import (
	"strings"
	"testing"

	"gantry/internal/urlpath"
)

// FuzzFastTargetsAreClean: every path the fast path accepts is already in
// urlpath's normal form, so the fast path and ServeHTTP route it alike; a path
// that needs normalising (or a 400) always goes to net/http.
func FuzzFastTargetsAreClean(f *testing.F) {
	for _, s := range []string{
		"/a/b.txt?x=1", // plain
		"/a/../b",      // dot segment: refused
		"/a/..;/b",     // dot-dot with a parameter: refused
		"/a//b",        // repeated slash: refused
		"/%2e%2e/b",    // escape: refused
		"/a..;b/c.",    // dots inside names: accepted, and clean
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if !safeTarget([]byte(target)) {
			return
		}
		p, _, _ := strings.Cut(target, "?")
		if clean, err := urlpath.Clean(p); err != nil || clean != p {
			t.Fatalf("fast path accepts %q, whose normal form is %q, %v", target, clean, err)
		}
	})
}
