package server

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gantry/internal/peertest"
)

// A site's error pages replace the body of every route's answer of that status,
// the static handler's, a PHP script's and a CGI script's alike, keep the status,
// reach HEAD without a body, and leave other methods, other statuses and the
// route's own fields alone; a route's own entry wins over the site's, and a page
// that cannot be opened leaves the route's answer as it was.
func TestErrorPages(t *testing.T) {
	phpCGI := peertest.Binary(t, "php-cgi", "php-cgi8.2")
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	writeFile(t, filepath.Join(www, "404.html"), "<!doctype html><title>Lost</title><p>site 404 page</p>\n")
	writeFile(t, filepath.Join(www, "cgi404.html"), "<p>cgi route's own 404 page</p>\n")
	writeFile(t, filepath.Join(www, "a.txt"), "hello\n")
	writeFile(t, filepath.Join(www, "php", "gone.php"), "<?php http_response_code(404); header('X-App: php'); echo 'php says gone';\n")
	writeFile(t, filepath.Join(www, "php", "ok.php"), "<?php echo 'php ok';\n")
	cgiDir := filepath.Join(dir, "cgi")
	for name, body := range map[string]string{
		"gone.cgi": "printf 'Status: 404 Not Found\\r\\nContent-Type: text/plain\\r\\nX-App: cgi\\r\\nSet-Cookie: s=1\\r\\n\\r\\ncgi says gone\\n'",
		"boom.cgi": "printf 'Status: 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\ncgi broke\\n'",
		"post.cgi": "printf 'Status: 404 Not Found\\r\\nContent-Type: text/plain\\r\\n\\r\\nno such form\\n'",
	} {
		writeFile(t, filepath.Join(cgiDir, name), "#!/bin/sh\n"+body+"\n")
		if err := os.Chmod(filepath.Join(cgiDir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, base, _ := startServer(t, fmt.Sprintf(`
[server]
listen = ["127.0.0.1:0"]
access_log = "off"
[admin]
listen = "off"
[[site]]
root = %q
errors = { 404 = "/404.html", 500 = "/missing-50x.html" }
  [[site.route]]
  path = "/php/"
  root = %q
  fastcgi_command = [%q]
  processes = 1
  [[site.route]]
  path = "/cgi/"
  cgi = %q
  errors = { 404 = "/cgi404.html" }
`, www, filepath.Join(www, "php"), phpCGI, cgiDir))

	sitePage := "<!doctype html><title>Lost</title><p>site 404 page</p>\n"
	tests := []struct {
		name, method, path string
		status             int
		body               string      // the whole body
		ctype              string      // a prefix of Content-Type
		header             http.Header // fields that must be as given; nil value: absent
	}{
		{"a missing file gets the page", "GET", "/nope.txt", 404, sitePage, "text/html", nil},
		{"a missing file twice (after the cache)", "GET", "/nope.txt", 404, sitePage, "text/html", nil},
		{"a HEAD gets the page's fields and no body", "HEAD", "/nope.txt", 404, "", "text/html",
			http.Header{"Content-Length": {fmt.Sprint(len(sitePage))}}},
		{"a file that exists is untouched", "GET", "/a.txt", 200, "hello\n", "text/plain", nil},
		{"a PHP 404 gets the page, its other fields stay", "GET", "/php/gone.php", 404, sitePage, "text/html",
			http.Header{"X-App": {"php"}}},
		{"a missing PHP script gets the page", "GET", "/php/absent.php", 404, sitePage, "text/html", nil},
		{"a PHP 200 is untouched", "GET", "/php/ok.php", 200, "php ok", "text/html", nil},
		{"a route's own page wins", "GET", "/cgi/gone.cgi", 404, "<p>cgi route's own 404 page</p>\n", "text/html",
			http.Header{"X-App": {"cgi"}, "Set-Cookie": {"s=1"}}},
		{"a POST keeps the route's answer", "POST", "/cgi/post.cgi", 404, "no such form\n", "text/plain", nil},
		{"a page that is missing leaves the answer", "GET", "/cgi/boom.cgi", 500, "cgi broke\n", "text/plain", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, nil)
			req.Header.Set("Accept-Encoding", "identity")
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if string(b) != tc.body {
				t.Errorf("body %q, want %q", b, tc.body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("Content-Type %q, want %s…", ct, tc.ctype)
			}
			for k, v := range tc.header {
				if got := resp.Header.Values(k); strings.Join(got, ",") != strings.Join(v, ",") {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}

	// Compression (on by default) sees the page, not the route's body.
	req, _ := http.NewRequest("GET", base+"/nope.txt", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req) // the transport decompresses
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || string(b) != sitePage {
		t.Errorf("compressed: %d %q", resp.StatusCode, b)
	}
}
