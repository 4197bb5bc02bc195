package server

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"gantry/internal/config"
)

// decodeBody undoes Content-Encoding enc with the standard library (gzip) or the
// codings' reference libraries.
func decodeBody(t *testing.T, enc string, body io.Reader) []byte {
	t.Helper()
	var r io.Reader = body
	switch enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(body)
	case "zstd":
		zr, err := zstd.NewReader(body)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("Content-Encoding %q", enc)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s body: %v", enc, err)
	}
	return b
}

// fetchEncoded asks for path with Accept-Encoding ae, without the transport's own
// gzip handling, and returns the response with its body read.
func fetchEncoded(t *testing.T, url, ae string, extra http.Header) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range extra {
		req.Header[k] = v
	}
	if ae != "" {
		req.Header.Set("Accept-Encoding", ae)
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

// Files, a CGI script's output and error pages are compressed in the coding the
// client rates best; precompressed siblings, images, ranges and the routes that
// turn it off are not. A cached file is compressed on the fast path.
func TestCompress(t *testing.T) {
	dir := t.TempDir()
	page := strings.Repeat("<p>gantry compresses text on the fly.</p>\n", 100)
	writeFile(t, filepath.Join(dir, "www", "page.html"), page)
	writeFile(t, filepath.Join(dir, "www", "tiny.html"), "<p>small</p>")
	writeFile(t, filepath.Join(dir, "www", "photo.png"), page) // content does not matter: the type does
	writeFile(t, filepath.Join(dir, "www", "pre.css"), page)
	var pre bytes.Buffer
	zw := gzip.NewWriter(&pre)
	zw.Write([]byte("/* the precompressed sibling */"))
	zw.Close()
	writeFile(t, filepath.Join(dir, "www", "pre.css.gz"), pre.String())
	writeFile(t, filepath.Join(dir, "raw", "page.html"), page)
	script := filepath.Join(dir, "cgi", "app.cgi")
	writeFile(t, script, "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nX-Seen-AE: %s\\r\\n\\r\\n' \"$HTTP_ACCEPT_ENCODING\"\ni=0\nwhile [ $i -lt 100 ]; do echo \"line $i of the script's output\"; i=$((i+1)); done\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	srv, base, _ := startServer(t, `
[server]
listen = ["127.0.0.1:0"]
access_log = "off"
[admin]
listen = "off"
[[site]]
root = "`+filepath.Join(dir, "www")+`"
  [[site.route]]
  path = "/cgi/"
  cgi = "`+filepath.Join(dir, "cgi")+`"
  compress = ["gzip", "br"]
  [[site.route]]
  path = "/raw/"
  static = "`+filepath.Join(dir, "raw")+`"
  compress = false
`)
	var cgiOut strings.Builder
	for i := range 100 {
		fmt.Fprintf(&cgiOut, "line %d of the script's output\n", i)
	}
	tests := []struct {
		name, path, ae string
		req            http.Header
		status         int
		enc            string // Content-Encoding wanted
		body           string // decoded
		vary           bool
	}{
		{"a file in gzip", "/page.html", "gzip", nil, 200, "gzip", page, true},
		{"a file in zstd, the first of the defaults", "/page.html", "gzip, deflate, br, zstd", nil, 200, "zstd", page, true},
		{"a file in br", "/page.html", "gzip, br", nil, 200, "br", page, true},
		// No coding the client takes: the handler's answer untouched, no Vary (as Caddy's encode).
		{"no Accept-Encoding", "/page.html", "", nil, 200, "", page, false},
		{"gzip refused", "/page.html", "gzip;q=0, identity", nil, 200, "", page, false},
		{"a tiny file", "/tiny.html", "gzip", nil, 200, "", "<p>small</p>", true},
		{"an image", "/photo.png", "gzip", nil, 200, "", page, false},
		{"the precompressed sibling wins", "/pre.css", "gzip, zstd", nil, 200, "gzip", "/* the precompressed sibling */", true},
		{"a range", "/page.html", "gzip", http.Header{"Range": {"bytes=0-9"}}, 206, "", page[:10], true},
		{"the static 404", "/missing", "gzip", nil, 404, "", "", true},
		{"a CGI script, in the route's first coding", "/cgi/app.cgi", "zstd, br, gzip", nil, 200, "gzip", "", true},
		{"a route with compress = false", "/raw/page.html", "gzip", nil, 200, "", page, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 2 { // the second request of a file is the cache's
				res, raw := fetchEncoded(t, base+tc.path, tc.ae, tc.req)
				if res.StatusCode != tc.status {
					t.Fatalf("request %d: status %d, want %d", i, res.StatusCode, tc.status)
				}
				if got := res.Header.Get("Content-Encoding"); got != tc.enc {
					t.Fatalf("request %d: Content-Encoding %q, want %q", i, got, tc.enc)
				}
				if got := strings.Contains(res.Header.Get("Vary"), "Accept-Encoding"); got != tc.vary {
					t.Errorf("request %d: Vary %q, want Accept-Encoding: %v", i, res.Header.Get("Vary"), tc.vary)
				}
				if cl := res.Header.Get("Content-Length"); tc.enc != "" && cl == fmt.Sprint(len(tc.body)) {
					t.Errorf("request %d: a compressed body with the file's Content-Length %s", i, cl)
				}
				got := string(decodeBody(t, tc.enc, bytes.NewReader(raw)))
				want := tc.body
				if strings.HasPrefix(tc.path, "/cgi/") {
					want = cgiOut.String()
					if seen := res.Header.Get("X-Seen-AE"); seen != tc.ae {
						t.Errorf("the script saw Accept-Encoding %q, want %q", seen, tc.ae)
					}
				}
				if tc.status != 404 && got != want {
					t.Errorf("request %d: body %d bytes %.40q, want %d bytes %.40q", i, len(got), got, len(want), want)
				}
			}
		})
	}

	// The cached file is compressed on the fast path, not handed to net/http.
	t.Run("fast path", func(t *testing.T) {
		before := srv.fastHits.Load()
		res, raw := fetchEncoded(t, base+"/page.html", "gzip", nil)
		if srv.fastHits.Load() == before {
			t.Error("a cached file took the slow path")
		}
		if res.Header.Get("Content-Encoding") != "gzip" || string(decodeBody(t, "gzip", bytes.NewReader(raw))) != page {
			t.Errorf("fast path: Content-Encoding %q", res.Header.Get("Content-Encoding"))
		}
	})

	// A weak ETag from a compressed answer still revalidates.
	t.Run("304 with the weak ETag", func(t *testing.T) {
		res, _ := fetchEncoded(t, base+"/page.html", "gzip", nil)
		etag := res.Header.Get("Etag")
		if !strings.HasPrefix(etag, `W/"`) {
			t.Fatalf("ETag %q of a compressed body is not weak", etag)
		}
		res, _ = fetchEncoded(t, base+"/page.html", "gzip", http.Header{"If-None-Match": {etag}})
		if res.StatusCode != 304 {
			t.Errorf("If-None-Match %s: status %d, want 304", etag, res.StatusCode)
		}
	})

	if curl, err := exec.LookPath("curl"); err == nil {
		t.Run("curl --compressed", func(t *testing.T) {
			out, err := exec.Command(curl, "-sS", "--compressed", "-D", "-", base+"/page.html").Output()
			if err != nil {
				t.Fatal(err)
			}
			head, body, _ := strings.Cut(string(out), "\r\n\r\n")
			if !strings.Contains(strings.ToLower(head), "content-encoding: ") {
				t.Errorf("curl got no compressed response:\n%s", head)
			}
			if body != page {
				t.Errorf("curl decoded %d bytes, want %d", len(body), len(page))
			}
		})
	}
}

// Events a proxied application streams reach the client compressed, each as it
// is flushed: the upstream sends the next only once the client read the last.
func TestCompressStreamThroughProxy(t *testing.T) {
	read := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			http.NewResponseController(w).Flush()
			select {
			case <-read:
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	_, base, _ := startServer(t, `
[server]
listen = ["127.0.0.1:0"]
access_log = "off"
[admin]
listen = "off"
[[site]]
  [[site.route]]
  path = "/"
  proxy = "`+up.URL+`"
`)
	// A deadline, not a wait: an event held back fails the read.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/events", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", res.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(zr)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if want := fmt.Sprintf("data: event %d\n", i); err != nil || line != want {
			t.Fatalf("event %d: %q, %v; want %q", i, line, err, want)
		}
		br.ReadString('\n')
		read <- struct{}{}
	}
}

func TestCompressConfig(t *testing.T) {
	tests := []struct {
		name, route, bad string
	}{
		{"a list", `compress = ["gzip", "zstd"]`, ""},
		{"true", `compress = true`, ""},
		{"empty list", `compress = []`, ""},
		{"unknown coding", `compress = ["deflate"]`, `unknown coding "deflate"`},
		{"twice", `compress = ["gzip", "gzip"]`, `"gzip" is listed twice`},
		{"a string", `compress = "gzip"`, "want a list of codings"},
		{"a list of numbers", `compress = [1]`, "want a list of codings"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("gantry.toml", "[[site]]\nroot = \""+t.TempDir()+"\"\n[[site.route]]\npath = \"/\"\nstatic = \".\"\n"+tc.route+"\n")
			if tc.bad == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.bad) || !strings.Contains(err.Error(), "gantry.toml:6:") {
				t.Errorf("error %v, want one at line 6 naming %q", err, tc.bad)
			}
		})
	}
}
