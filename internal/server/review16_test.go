package server

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

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
