package server

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// A CGI script that declares more than it sends is cut short for the client
// whether or not the response is compressed: compression drops the declared
// Content-Length, and without this the client got a complete, well-formed gzip
// (br, zstd) stream of a truncated page, which a browser or cache keeps as whole.
func TestCompressShortBackendIsCut(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "cgi", "short.cgi")
	writeFile(t, script, "#!/bin/sh\nprintf 'Content-Type: text/html\\r\\nContent-Length: 5000\\r\\n\\r\\n'\n"+
		"i=0; while [ $i -lt 100 ]; do printf '<p>line</p>\\n'; i=$((i+1)); done\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	var recs records
	_, base := startObserved(t, `
[server]
listen = ["127.0.0.1:0"]
access_log = "off"
[admin]
listen = "off"
[[site]]
root = "`+dir+`"
  [[site.route]]
  path = "/cgi/"
  cgi = "`+filepath.Join(dir, "cgi")+`"
`, recs.observe)
	for i, enc := range []string{"", "gzip", "br", "zstd"} {
		t.Run("Accept-Encoding "+enc, func(t *testing.T) {
			req, _ := http.NewRequest("GET", base+"/cgi/short.cgi", nil)
			if enc != "" {
				req.Header.Set("Accept-Encoding", enc)
			}
			tr := &http.Transport{DisableCompression: true}
			defer tr.CloseIdleConnections()
			res, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if got := res.Header.Get("Content-Encoding"); got != enc {
				t.Fatalf("Content-Encoding %q, want %q", got, enc)
			}
			raw, readErr := io.ReadAll(res.Body)
			if readErr == nil {
				// The transfer looked complete: the coded stream must not be.
				if body, err := tryDecode(enc, raw); err == nil {
					t.Errorf("the client got a complete response of %d bytes for a declared 5000", len(body))
				}
			}
			if rec := recs.nth(t, i+1); rec.Aborted != "backend" {
				t.Errorf("access log: aborted %q, want backend", rec.Aborted)
			}
		})
	}
}

// tryDecode undoes Content-Encoding enc; a truncated stream is an error.
func tryDecode(enc string, raw []byte) ([]byte, error) {
	var r io.Reader = bytes.NewReader(raw)
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		r = zr
	case "br":
		r = brotli.NewReader(r)
	case "zstd":
		zr, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	}
	return io.ReadAll(r)
}

// A cached static file is answered on the fast path with the middleware a site
// has by default (compression) and with header rules: none of them needs more
// than the cached answer. Since the request body's cap became part of each
// route's handler (bodyFirst), nothing was: every static route went to net/http.
func TestFastPathCacheThroughMiddleware(t *testing.T) {
	tests := []struct {
		name, site string
		header     string // a header the answer must carry
	}{
		{"compression on, the default", "", "Vary: Accept-Encoding"},
		{"compression off", "compress = false\n", "Etag: "},
		{"header rules", `headers = { "X-Frame-Options" = "DENY" }` + "\n", "X-Frame-Options: DENY"},
		{"header rules without compression", "compress = false\n" + `headers = { "X-Frame-Options" = "DENY" }` + "\n", "X-Frame-Options: DENY"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writeFile(t, filepath.Join(root, "a.txt"), "hello")
			srv, base, _ := startServer(t, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n[[site]]\nroot=%q\n%s", root, tc.site))
			// The first answer fills the cache.
			get(t, base+"/a.txt", "")
			before := srv.fastHits.Load()
			c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			for i := range 2 {
				io.WriteString(c, "GET /a.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				var head bytes.Buffer
				res.Header.Write(&head)
				if string(body) != "hello" || !strings.Contains(head.String(), tc.header) {
					t.Fatalf("answer %d: %q with\n%s want hello with %q", i, body, head.String(), tc.header)
				}
			}
			if n := srv.fastHits.Load() - before; n != 2 {
				t.Errorf("fast path answers: %d, want 2", n)
			}
		})
	}
}

// A CGI script's local redirect is routed as the same path would be if the
// client had asked for it: normalised first, so that "/pub/../private/x" is the
// protected route's, not the open one's with the dot segments handed on.
func TestLocalRedirectRoutesTheCleanPath(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "cgi", "go.cgi")
	writeFile(t, script, "#!/bin/sh\nprintf 'Location: %s\\r\\n\\r\\n' \"$QUERY_STRING\"\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	pw, err := filepath.Abs("testdata/htpasswd")
	if err != nil {
		t.Fatal(err)
	}
	var seen sync.Map // the paths the upstream was asked for
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.URL.Path, true)
		io.WriteString(w, "upstream "+r.URL.Path)
	}))
	t.Cleanup(up.Close)
	_, base, _ := startServer(t, `
[server]
listen = ["127.0.0.1:0"]
access_log = "off"
[admin]
listen = "off"
[[site]]
root = "`+dir+`"
  [[site.route]]
  path = "/cgi/"
  cgi = "`+filepath.Join(dir, "cgi")+`"
  [[site.route]]
  path = "/pub/"
  proxy = "`+up.URL+`"
  [[site.route]]
  path = "/private/"
  proxy = "`+up.URL+`"
  auth = "`+pw+`"
`)
	tests := []struct {
		name, location string
		status         int
	}{
		{"a protected path", "/private/x", 401},
		{"through dot segments", "/pub/../private/x", 401},
		{"through an encoded dot segment", "/pub/%2e%2e/private/x", 401},
		{"through an empty segment", "/pub//../private/x", 401},
		{"an open path", "/pub/y", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := get(t, base+"/cgi/go.cgi?"+tc.location, ""); code != tc.status {
				t.Errorf("status %d (%q), want %d", code, body, tc.status)
			}
		})
	}
	seen.Range(func(k, _ any) bool {
		if strings.Contains(k.(string), "private") {
			t.Errorf("the upstream was asked for %q without credentials", k)
		}
		return true
	})
}

// A local redirect from a script behind basic auth to another protected path
// serves it to the user who logged in: the credentials, kept from the script,
// still let them through the second check. Without credentials it is 401
// whichever way the request comes.
func TestLocalRedirectUnderAuth(t *testing.T) {
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	writeFile(t, filepath.Join(www, "a.txt"), "secret file\n")
	script := filepath.Join(dir, "cgi", "go.cgi")
	writeFile(t, script, "#!/bin/sh\nprintf 'Location: %s\\r\\n\\r\\n' \"$QUERY_STRING\"\n")
	env := filepath.Join(dir, "cgi", "env.cgi")
	writeFile(t, env, "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nenv | grep -E '^(HTTP_AUTHORIZATION|REMOTE_USER)=' | sort\n")
	for _, f := range []string{script, env} {
		if err := os.Chmod(f, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pw, err := filepath.Abs("testdata/htpasswd")
	if err != nil {
		t.Fatal(err)
	}
	_, base, _ := startServer(t, `
[server]
listen = ["127.0.0.1:0"]
access_log = "off"
[admin]
listen = "off"
[[site]]
root = "`+www+`"
auth = "`+pw+`"
  [[site.route]]
  path = "/cgi/"
  cgi = "`+filepath.Join(dir, "cgi")+`"
  [[site.route]]
  path = "/open/"
  cgi = "`+filepath.Join(dir, "cgi")+`"
  auth = "off"
`)
	tests := []struct {
		name, path, user, pw string
		status               int
		body                 string
	}{
		{"logged in, to a protected file", "/cgi/go.cgi?/a.txt", "alice", "alice-secret", 200, "secret file\n"},
		{"logged in, to a protected script: the user, not the password", "/cgi/go.cgi?/cgi/env.cgi", "alice", "alice-secret", 200, "REMOTE_USER=alice\n"},
		{"no credentials", "/cgi/go.cgi?/a.txt", "", "", 401, ""},
		{"from an open script, no credentials", "/open/go.cgi?/a.txt", "", "", 401, ""},
		{"from an open script, a wrong password", "/open/go.cgi?/a.txt", "alice", "wrong", 401, ""},
		{"from an open script, logged in", "/open/go.cgi?/a.txt", "alice", "alice-secret", 200, "secret file\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := authGet(t, base+tc.path, tc.user, tc.pw)
			if resp.StatusCode != tc.status || tc.status == 200 && body != tc.body {
				t.Errorf("status %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
		})
	}
}
