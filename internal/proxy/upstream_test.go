package proxy

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseUpstream(t *testing.T) {
	tests := []struct {
		in   string
		want upstream
	}{
		{"http://127.0.0.1:3000", upstream{scheme: "http", host: "127.0.0.1:3000"}},
		{"http://localhost", upstream{scheme: "http", host: "localhost:80"}},
		{"https://api.example", upstream{scheme: "https", host: "api.example:443"}},
		{"http://[::1]:8000/", upstream{scheme: "http", host: "[::1]:8000", base: "/", hasBase: true}},
		{"http://h:1/base/", upstream{scheme: "http", host: "h:1", base: "/base/", hasBase: true}},
		{"http://h:1/a%2Fb?k=v", upstream{scheme: "http", host: "h:1", base: "/a%2Fb", hasBase: true, rawQuery: "k=v"}},
		{"unix:/run/app.sock", upstream{scheme: "http", host: "localhost", socket: "/run/app.sock"}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseUpstream(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMapPath(t *testing.T) {
	tests := []struct {
		name    string
		route   string
		base    string
		hasBase bool
		req     string
		want    string
	}{
		{"no base keeps path", "/app/", "", false, "/app/x", "/app/x"},
		{"no base keeps dot segments for the upstream to judge", "/", "", false, "/a/../b", "/a/../b"},
		{"slash base strips prefix", "/app/", "/", true, "/app/x", "/x"},
		{"prefix replaced", "/app/", "/api/", true, "/app/x/y/", "/api/x/y/"},
		{"base without trailing slash", "/app/", "/api", true, "/app/x", "/api/x"},
		{"route itself", "/app/", "/api/", true, "/app/", "/api/"},
		{"route without its slash", "/app/", "/api/", true, "/app", "/api/"},
		{"root route", "/", "/api/", true, "/x", "/api/x"},
		{"exact route", "/health", "/status", true, "/health", "/status"},
		{"suffix route prefixes base", "*.php", "/php", true, "/a/b.php", "/php/a/b.php"},
		{"dot-dot cannot climb above base", "/app/", "/api/", true, "/app/../../etc/passwd", "/api/etc/passwd"},
		{"encoded dot-dot too", "/app/", "/api/", true, "/app/%2e%2E/%2E%2e/x", "/api/x"},
		{"single dots dropped", "/app/", "/api/", true, "/app/./a/./b/.", "/api/a/b/"},
		{"dot-dot inside", "/app/", "/api/", true, "/app/a/b/../c", "/api/a/c"},
		{"escapes kept", "/app/", "/api/", true, "/app/a%2Fb%20c", "/api/a%2Fb%20c"},
		{"double slash kept", "/app/", "/api/", true, "/app/a//b", "/api/a//b"},
		{"dots in names are not segments", "/app/", "/api/", true, "/app/..a/b..", "/api/..a/b.."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mapPath(tc.route, tc.base, tc.hasBase, tc.req); got != tc.want {
				t.Errorf("mapPath(%q, %q, %q) = %q, want %q", tc.route, tc.base, tc.req, got, tc.want)
			}
		})
	}
}

// FuzzMapPath checks that a mapped path always stays under the base and
// never carries a dot segment the upstream could resolve upward.
func FuzzMapPath(f *testing.F) {
	f.Add("/app/", "/api/", "/app/x")                  // plain prefix replacement
	f.Add("/app/", "/api", "/app/../../x")             // climbing out of the base
	f.Add("/", "/b/", "/%2e%2e/%2E%2E/etc/passwd")     // encoded dot segments
	f.Add("*.php", "/php", "/a/./b/../../../c.php")    // suffix route
	f.Add("/x", "/y", "/x")                            // exact route
	f.Add("/app/", "/api/", "/app/a//..//b/%2f/./c/.") // empty segments mixed with dots
	f.Fuzz(func(t *testing.T, route, base, req string) {
		if !strings.HasPrefix(base, "/") || !strings.HasPrefix(req, "/") {
			return
		}
		got := mapPath(route, base, true, req)
		if !strings.HasPrefix(got, strings.TrimSuffix(base, "/")) {
			t.Fatalf("mapPath(%q, %q, %q) = %q escapes the base", route, base, req, got)
		}
		rest := strings.TrimPrefix(got, strings.TrimSuffix(base, "/"))
		for _, seg := range strings.Split(rest, "/") {
			if u, err := url.PathUnescape(seg); err == nil && (u == "." || u == "..") {
				t.Fatalf("mapPath(%q, %q, %q) = %q keeps dot segment %q", route, base, req, got, seg)
			}
		}
	})
}

// FuzzParseUpstream checks that any accepted upstream has a scheme and a
// host:port the transport can dial.
func FuzzParseUpstream(f *testing.F) {
	f.Add("http://127.0.0.1:3000") // the common case
	f.Add("http://h:1/base/?k=v")  // base path and query
	f.Add("unix:/run/app.sock")    // unix socket
	f.Add("https://[::1]/")        // IPv6, default port
	f.Add("http://%zz")            // bad escape
	f.Add("unix:relative.sock")    // relative socket
	f.Add("http://u@h/#frag")      // user info and fragment
	f.Fuzz(func(t *testing.T, s string) {
		up, err := parseUpstream(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "proxy: ") {
				t.Fatalf("error %q lacks the proxy: prefix", err)
			}
			return
		}
		if up.scheme != "http" && up.scheme != "https" {
			t.Fatalf("%q: scheme %q", s, up.scheme)
		}
		if up.socket == "" {
			if _, err := url.Parse(up.scheme + "://" + up.host + "/"); err != nil {
				t.Fatalf("%q: host %q does not form a URL: %v", s, up.host, err)
			}
		}
		if up.hasBase && !strings.HasPrefix(up.base, "/") {
			t.Fatalf("%q: base %q is not absolute", s, up.base)
		}
	})
}
