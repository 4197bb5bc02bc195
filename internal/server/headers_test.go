package server

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Header rules from the site and the route reach every response of the route:
// files answered from the cache (which the fast path would otherwise serve
// without them), the static handler's own 404, and a CGI script's response,
// whose own value a rule replaces.
func TestHeaderRules(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "www", "a.txt"), "hello\n")
	script := filepath.Join(dir, "cgi", "app.cgi")
	writeFile(t, script, "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nCache-Control: no-store\\r\\nX-Powered-By: sh\\r\\n\\r\\nfrom cgi\\n'\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	_, base, _ := startServer(t, `
[server]
listen = ["127.0.0.1:0"]
access_log = "off"
[admin]
listen = "off"
[[site]]
root = "`+filepath.Join(dir, "www")+`"
headers = { "X-Frame-Options" = "DENY", "-Server" = "" }
  [[site.route]]
  path = "/cgi/"
  cgi = "`+filepath.Join(dir, "cgi")+`"
  headers = { "Cache-Control" = "public, max-age=60", "-X-Powered-By" = "", "+X-Frame-Options" = "SAMEORIGIN" }
`)
	tests := []struct {
		name, path string
		status     int
		want       http.Header // nil value: absent
	}{
		{"a cached file gets the site's rules", "/a.txt", 200,
			http.Header{"X-Frame-Options": {"DENY"}, "Server": nil}},
		{"the static 404 too", "/missing.txt", 404,
			http.Header{"X-Frame-Options": {"DENY"}, "Server": nil}},
		{"a route's rules run after the site's", "/cgi/app.cgi", 200,
			http.Header{"X-Frame-Options": {"DENY", "SAMEORIGIN"}, "Server": nil, "Cache-Control": {"public, max-age=60"}, "X-Powered-By": nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // the second request of a file is the cache's
				resp, err := http.Get(base + tc.path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
				for k, v := range tc.want {
					if got := resp.Header[k]; !slices.Equal(got, v) {
						t.Errorf("%s = %q, want %q", k, got, v)
					}
				}
			}
		})
	}
}
