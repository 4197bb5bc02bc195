package server

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// A static file answered inline by HTTP/2's reader goroutine, or declined to a
// handler when the cache would read the disk, is the answer HTTP/1.1 gives:
// same status, header fields (but Date) and bytes, for every kind of request.
func TestHTTP2StaticMatchesHTTP1(t *testing.T) {
	root := t.TempDir()
	text := strings.Repeat("some compressible text for the static cache\n", 100)
	writeFile(t, filepath.Join(root, "a.txt"), text)
	writeFile(t, filepath.Join(root, "pre.css"), "body{}\n")
	writeFile(t, filepath.Join(root, "pre.css.gz"), "not really gzip")
	writeFile(t, filepath.Join(root, "big.bin"), strings.Repeat("0123456789abcdef", 1<<17))
	writeFile(t, filepath.Join(root, "index.html"), "<p>index</p>\n")
	ts := startTLSServer(t, fmt.Sprintf("[[site]]\nhosts=[\"localhost\"]\nroot=%q\n", root))
	m := ts.srv.Certs()
	peertest.WaitFor(t, 20*time.Second, "an internal certificate for localhost", func() bool { return m.HasCert("localhost") })
	roots := rootPool(t, filepath.Join(ts.storage, "ca", "root.pem"))
	clients := map[string]*http.Client{"HTTP/1.1": httpsClient(roots, false), "HTTP/2.0": httpsClient(roots, true)}
	for _, c := range clients {
		c.Transport.(*http.Transport).DisableCompression = true
	}
	base := "https://localhost:" + ts.tlsPort
	etag := func() string {
		resp, err := clients["HTTP/1.1"].Get(base + "/a.txt")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("ETag")
	}()
	if etag == "" {
		t.Fatal("no ETag on /a.txt")
	}
	tests := []struct {
		name, method, path string
		hdr                []string
	}{
		{"GET", "GET", "/a.txt", nil},
		{"HEAD", "HEAD", "/a.txt", nil},
		{"gzip", "GET", "/a.txt", []string{"Accept-Encoding", "gzip"}},
		{"br", "GET", "/a.txt", []string{"Accept-Encoding", "br"}},
		{"zstd then gzip", "GET", "/a.txt", []string{"Accept-Encoding", "zstd;q=0.5, gzip"}},
		{"identity only", "GET", "/a.txt", []string{"Accept-Encoding", "gzip;q=0, identity"}},
		{"HEAD gzip", "HEAD", "/a.txt", []string{"Accept-Encoding", "gzip"}},
		{"precompressed sibling", "GET", "/pre.css", []string{"Accept-Encoding", "gzip"}},
		{"range", "GET", "/a.txt", []string{"Range", "bytes=10-19"}},
		{"suffix range", "GET", "/a.txt", []string{"Range", "bytes=-7"}},
		{"two ranges", "GET", "/a.txt", []string{"Range", "bytes=0-3,20-25"}},
		{"unsatisfiable range", "GET", "/a.txt", []string{"Range", "bytes=999999-"}},
		{"range with gzip", "GET", "/a.txt", []string{"Range", "bytes=0-9", "Accept-Encoding", "gzip"}},
		{"If-None-Match", "GET", "/a.txt", []string{"If-None-Match", etag}},
		{"If-None-Match other", "GET", "/a.txt", []string{"If-None-Match", `"other"`}},
		{"If-Range matching", "GET", "/a.txt", []string{"Range", "bytes=0-4", "If-Range", etag}},
		{"If-Range stale", "GET", "/a.txt", []string{"Range", "bytes=0-4", "If-Range", `"old"`}},
		{"If-Modified-Since future", "GET", "/a.txt", []string{"If-Modified-Since", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}},
		{"big file from disk", "GET", "/big.bin", nil},
		{"big file range", "GET", "/big.bin", []string{"Range", "bytes=1000000-1000015"}},
		{"HEAD big file", "HEAD", "/big.bin", nil},
		{"directory index", "GET", "/", nil},
		{"missing", "GET", "/nope.txt", nil},
	}
	type answer struct {
		status int
		hdr    http.Header
		body   string
	}
	do := func(t *testing.T, c *http.Client, method, path string, hdr []string) answer {
		req, _ := http.NewRequest(method, base+path, nil)
		for i := 0; i < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Header.Del("Date")
		return answer{resp.StatusCode, resp.Header, string(b)}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Twice over each: the first may fill the cache.
			var got [2]answer
			for i, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
				do(t, clients[proto], tt.method, tt.path, tt.hdr)
				got[i] = do(t, clients[proto], tt.method, tt.path, tt.hdr)
			}
			h1, h2 := got[0], got[1]
			if h1.status != h2.status {
				t.Errorf("status %d over HTTP/1.1, %d over HTTP/2", h1.status, h2.status)
			}
			if h1.body != h2.body {
				t.Errorf("bodies differ: %d bytes over HTTP/1.1 (%.40q), %d over HTTP/2 (%.40q)", len(h1.body), h1.body, len(h2.body), h2.body)
			}
			keys := func(h http.Header) []string {
				var out []string
				for k, v := range h {
					out = append(out, k+": "+strings.Join(v, ", "))
				}
				slices.Sort(out)
				return out
			}
			if k1, k2 := keys(h1.hdr), keys(h2.hdr); !slices.Equal(k1, k2) {
				t.Errorf("header fields differ:\nHTTP/1.1 %q\nHTTP/2   %q", k1, k2)
			}
		})
	}
}
