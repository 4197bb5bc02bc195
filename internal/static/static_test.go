package static

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gantry/internal/peertest"
)

func do(h http.Handler, method, target string, headers ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/site", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// cacheModes runs a test against the in-memory path and the from-disk path, which
// must answer alike.
var cacheModes = []struct {
	name string
	opts Options
}{
	{"cached", Options{}},
	{"pooled", Options{CacheMaxFileSize: 1}}, // every file over 1 byte: open descriptors, not memory
	{"disk", Options{CacheMaxBytes: -1}},
}

func TestServe(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		target  string
		headers []string
		opts    Options
		status  int
		body    string // fixture name whose content is expected, or "" to skip
		want    map[string]string
	}{
		{name: "text file", target: "/hello.txt", status: 200, body: "hello.txt",
			want: map[string]string{"Content-Type": "text/plain; charset=utf-8", "Content-Length": "13", "Accept-Ranges": "bytes", "Vary": ""}},
		{name: "root index", target: "/", status: 200, body: "index.html",
			want: map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{name: "subdirectory index", target: "/sub/", status: 200, body: "sub/index.html"},
		{name: "index file by name", target: "/sub/index.html", status: 200, body: "sub/index.html"},
		{name: "directory without slash redirects", target: "/sub", status: 301,
			want: map[string]string{"Location": "./sub/"}},
		{name: "redirect keeps query", target: "/sub?a=1&b=2", status: 301,
			want: map[string]string{"Location": "./sub/?a=1&b=2"}},
		{name: "custom index list", target: "/sub/", opts: Options{Index: []string{"page.html", "index.html"}}, status: 200, body: "sub/page.html"},
		{name: "directory without index", target: "/empty/", status: 403},
		{name: "missing file", target: "/nope.txt", status: 404},
		{name: "file with trailing slash", target: "/hello.txt/", status: 404},
		{name: "unknown extension is sniffed", target: "/noext", status: 200, body: "noext",
			want: map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{name: "merged slashes", target: "/sub//page.html", status: 200, body: "sub/page.html"},
		{name: "head has headers, no body", method: "HEAD", target: "/hello.txt", status: 200, body: "-",
			want: map[string]string{"Content-Length": "13", "Content-Type": "text/plain; charset=utf-8"}},
		{name: "post is 405", method: "POST", target: "/hello.txt", status: 405,
			want: map[string]string{"Allow": "GET, HEAD"}},
		{name: "delete is 405", method: "DELETE", target: "/hello.txt", status: 405,
			want: map[string]string{"Allow": "GET, HEAD"}},
		{name: "dotfile hidden", target: "/.env", status: 404},
		{name: "dot directory hidden", target: "/.git/config", status: 404},
		{name: "well-known served", target: "/.well-known/security.txt", status: 200, body: ".well-known/security.txt"},
		{name: "dotfile allowed when configured", target: "/.env", opts: Options{AllowDotfiles: true}, status: 200, body: ".env"},
		{name: "cache-control option", target: "/hello.txt", opts: Options{CacheControl: "public, max-age=60"}, status: 200,
			want: map[string]string{"Cache-Control": "public, max-age=60"}},

		{name: "no accept-encoding gets identity", target: "/style.css", status: 200, body: "style.css",
			want: map[string]string{"Content-Encoding": "", "Vary": "Accept-Encoding", "Content-Type": "text/css; charset=utf-8"}},
		{name: "gzip sibling", target: "/style.css", headers: []string{"Accept-Encoding", "gzip"}, status: 200, body: "style.css.gz",
			want: map[string]string{"Content-Encoding": "gzip", "Vary": "Accept-Encoding", "Content-Type": "text/css; charset=utf-8", "Content-Length": "37"}},
		{name: "br preferred over gzip", target: "/style.css", headers: []string{"Accept-Encoding", "gzip, deflate, br"}, status: 200, body: "style.css.br",
			want: map[string]string{"Content-Encoding": "br", "Vary": "Accept-Encoding"}},
		{name: "q-values rank gzip over br", target: "/style.css", headers: []string{"Accept-Encoding", "br;q=0.5, gzip;q=0.9"}, status: 200, body: "style.css.gz",
			want: map[string]string{"Content-Encoding": "gzip"}},
		{name: "q=0 refuses a coding", target: "/style.css", headers: []string{"Accept-Encoding", "gzip;q=0, identity"}, status: 200, body: "style.css",
			want: map[string]string{"Content-Encoding": "", "Vary": "Accept-Encoding"}},
		{name: "star covers br", target: "/style.css", headers: []string{"Accept-Encoding", "*"}, status: 200, body: "style.css.br",
			want: map[string]string{"Content-Encoding": "br"}},
		{name: "etags differ per encoding", target: "/style.css", headers: []string{"Accept-Encoding", "gzip"}, status: 200,
			want: map[string]string{"Etag": "*-gzip\""}},
	}
	for _, mode := range cacheModes {
		for _, tc := range tests {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				opts := tc.opts
				opts.Root = newSite(t)
				opts.CacheMaxBytes, opts.CacheMaxFileSize = mode.opts.CacheMaxBytes, mode.opts.CacheMaxFileSize
				h := newHandler(t, opts)
				method := tc.method
				if method == "" {
					method = "GET"
				}
				// Twice: the first request fills the cache, the second is served from it.
				for i := 0; i < 2; i++ {
					w := do(h, method, tc.target, tc.headers...)
					if w.Code != tc.status {
						t.Fatalf("request %d: status %d, want %d; body %q", i, w.Code, tc.status, w.Body.String())
					}
					switch tc.body {
					case "":
					case "-":
						if w.Body.Len() != 0 {
							t.Fatalf("body %q, want none", w.Body.String())
						}
					default:
						if got, want := w.Body.String(), readFixture(t, tc.body); got != want {
							t.Fatalf("body %q, want %q", got, want)
						}
					}
					for k, v := range tc.want {
						got := w.Header().Get(k)
						if strings.HasPrefix(v, "*") {
							if !strings.HasSuffix(got, v[1:]) {
								t.Fatalf("header %s = %q, want suffix %q", k, got, v[1:])
							}
						} else if got != v {
							t.Fatalf("header %s = %q, want %q", k, got, v)
						}
					}
				}
			})
		}
	}
}

func TestRoutes(t *testing.T) {
	site := newSite(t)
	tests := []struct {
		name, route, target string
		status              int
		body, location      string
	}{
		{"prefix stripped", "/static/", "/static/hello.txt", 200, "hello.txt", ""},
		{"prefix nested", "/static/", "/static/sub/page.html", 200, "sub/page.html", ""},
		{"prefix index", "/static/", "/static/", 200, "index.html", ""},
		{"prefix without slash redirects", "/static/", "/static", 301, "", "./static/"},
		{"other prefix not ours", "/static/", "/staticx/hello.txt", 404, "", ""},
		{"deep prefix", "/a/b/", "/a/b/hello.txt", 200, "hello.txt", ""},
		{"exact route maps whole path", "/hello.txt", "/hello.txt", 200, "hello.txt", ""},
		{"suffix route maps whole path", "*.css", "/style.css", 200, "style.css", ""},
		{"root route", "/", "/sub/page.html", 200, "sub/page.html", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler(t, Options{Root: site, Route: tc.route})
			w := do(h, "GET", tc.target)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if tc.body != "" && w.Body.String() != readFixture(t, tc.body) {
				t.Fatalf("body %q, want fixture %s", w.Body.String(), tc.body)
			}
			if got := w.Header().Get("Location"); got != tc.location {
				t.Fatalf("Location %q, want %q", got, tc.location)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	writeFile(t, file, "x")
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"missing root", Options{Root: filepath.Join(dir, "missing")}, "static: open root " + filepath.Join(dir, "missing")},
		{"root is a file", Options{Root: file}, "not a directory"},
		{"no root", Options{}, "root directory not set"},
		{"index with slash", Options{Root: dir, Index: []string{"a/b.html"}}, `index name "a/b.html"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestConditional(t *testing.T) {
	for _, mode := range cacheModes {
		t.Run(mode.name, func(t *testing.T) {
			site := newSite(t)
			old := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
			if err := os.Chtimes(filepath.Join(site, "hello.txt"), old, old); err != nil {
				t.Fatal(err)
			}
			h := newHandler(t, Options{Root: site, CacheMaxBytes: mode.opts.CacheMaxBytes, CacheMaxFileSize: mode.opts.CacheMaxFileSize})
			first := do(h, "GET", "/hello.txt")
			etag, lastMod := first.Header().Get("Etag"), first.Header().Get("Last-Modified")
			if !strings.HasPrefix(etag, `"`) || lastMod != "Wed, 01 May 2024 12:00:00 GMT" {
				t.Fatalf("ETag %q, Last-Modified %q", etag, lastMod)
			}
			tests := []struct {
				name    string
				method  string
				headers []string
				status  int
			}{
				{"if-none-match same etag", "GET", []string{"If-None-Match", etag}, 304},
				{"if-none-match weak form matches", "GET", []string{"If-None-Match", "W/" + etag}, 304},
				{"if-none-match in a list", "GET", []string{"If-None-Match", `"nope", ` + etag}, 304},
				{"if-none-match star", "GET", []string{"If-None-Match", "*"}, 304},
				{"if-none-match head", "HEAD", []string{"If-None-Match", etag}, 304},
				{"if-none-match other etag", "GET", []string{"If-None-Match", `"other"`}, 200},
				{"if-modified-since exact", "GET", []string{"If-Modified-Since", lastMod}, 304},
				{"if-modified-since later", "GET", []string{"If-Modified-Since", "Thu, 02 May 2024 12:00:00 GMT"}, 304},
				{"if-modified-since earlier", "GET", []string{"If-Modified-Since", "Tue, 30 Apr 2024 12:00:00 GMT"}, 200},
				{"if-modified-since garbage", "GET", []string{"If-Modified-Since", "yesterday"}, 200},
				{"if-none-match wins over if-modified-since", "GET", []string{"If-None-Match", `"other"`, "If-Modified-Since", lastMod}, 200},
				{"if-match same etag", "GET", []string{"If-Match", etag}, 200},
				{"if-match star", "GET", []string{"If-Match", "*"}, 200},
				{"if-match other etag", "GET", []string{"If-Match", `"other"`}, 412},
				{"if-match weak never matches", "GET", []string{"If-Match", "W/" + etag}, 412},
				{"if-unmodified-since earlier", "GET", []string{"If-Unmodified-Since", "Tue, 30 Apr 2024 12:00:00 GMT"}, 412},
				{"if-unmodified-since exact", "GET", []string{"If-Unmodified-Since", lastMod}, 200},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					w := do(h, tc.method, "/hello.txt", tc.headers...)
					if w.Code != tc.status {
						t.Fatalf("status %d, want %d", w.Code, tc.status)
					}
					if tc.status == 304 {
						if w.Body.Len() != 0 || w.Header().Get("Etag") != etag || w.Header().Get("Content-Type") != "" {
							t.Fatalf("304 with body %q, ETag %q, Content-Type %q", w.Body.String(), w.Header().Get("Etag"), w.Header().Get("Content-Type"))
						}
					}
				})
			}
		})
	}
}

func TestRange(t *testing.T) {
	content := make([]byte, 10000)
	for i := range content {
		content[i] = byte('a' + i%26)
	}
	for _, mode := range cacheModes {
		t.Run(mode.name, func(t *testing.T) {
			site := newSite(t)
			writeFile(t, filepath.Join(site, "data.txt"), string(content))
			h := newHandler(t, Options{Root: site, CacheMaxBytes: mode.opts.CacheMaxBytes, CacheMaxFileSize: mode.opts.CacheMaxFileSize, MaxRanges: 10})
			etag := do(h, "GET", "/data.txt").Header().Get("Etag")
			lastMod := do(h, "GET", "/data.txt").Header().Get("Last-Modified")
			tests := []struct {
				name    string
				method  string
				headers []string
				status  int
				parts   []part // for 206
			}{
				{"first bytes", "GET", []string{"Range", "bytes=0-99"}, 206, []part{{0, 99}}},
				{"open ended", "GET", []string{"Range", "bytes=9990-"}, 206, []part{{9990, 9999}}},
				{"suffix", "GET", []string{"Range", "bytes=-10"}, 206, []part{{9990, 9999}}},
				{"suffix longer than file", "GET", []string{"Range", "bytes=-20000"}, 206, []part{{0, 9999}}},
				{"end past size clamped", "GET", []string{"Range", "bytes=9000-20000"}, 206, []part{{9000, 9999}}},
				{"two distant ranges are multipart", "GET", []string{"Range", "bytes=0-9, 5000-5009"}, 206, []part{{0, 9}, {5000, 5009}}},
				{"out of order ranges sorted", "GET", []string{"Range", "bytes=5000-5009,0-9"}, 206, []part{{0, 9}, {5000, 5009}}},
				{"overlapping ranges coalesced", "GET", []string{"Range", "bytes=0-99,50-149,100-199"}, 206, []part{{0, 199}}},
				{"unsatisfiable part skipped", "GET", []string{"Range", "bytes=20000-,0-0"}, 206, []part{{0, 0}}},
				{"unsatisfiable", "GET", []string{"Range", "bytes=10000-"}, 416, nil},
				{"zero suffix unsatisfiable", "GET", []string{"Range", "bytes=-0"}, 416, nil},
				{"malformed ignored", "GET", []string{"Range", "bytes=abc"}, 200, nil},
				{"reversed ignored", "GET", []string{"Range", "bytes=50-10"}, 200, nil},
				{"other unit ignored", "GET", []string{"Range", "items=0-1"}, 200, nil},
				{"too many parts ignored", "GET", []string{"Range", "bytes=0-0,100-100,200-200,300-300,400-400,500-500,600-600,700-700,800-800,900-900,1000-1000"}, 200, nil},
				{"head ignores range", "HEAD", []string{"Range", "bytes=0-9"}, 200, nil},
				{"if-range current etag", "GET", []string{"Range", "bytes=0-9", "If-Range", etag}, 206, []part{{0, 9}}},
				{"if-range old etag sends all", "GET", []string{"Range", "bytes=0-9", "If-Range", `"old"`}, 200, nil},
				{"if-range weak etag sends all", "GET", []string{"Range", "bytes=0-9", "If-Range", "W/" + etag}, 200, nil},
				{"if-range current date", "GET", []string{"Range", "bytes=0-9", "If-Range", lastMod}, 206, []part{{0, 9}}},
				{"if-range old date sends all", "GET", []string{"Range", "bytes=0-9", "If-Range", "Mon, 01 Jan 2001 00:00:00 GMT"}, 200, nil},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					w := do(h, tc.method, "/data.txt", tc.headers...)
					if w.Code != tc.status {
						t.Fatalf("status %d, want %d", w.Code, tc.status)
					}
					switch {
					case tc.status == 416:
						if got := w.Header().Get("Content-Range"); got != "bytes */10000" {
							t.Fatalf("Content-Range %q", got)
						}
					case tc.status == 200 && tc.method == "GET":
						if !bytes.Equal(w.Body.Bytes(), content) {
							t.Fatalf("200 body is not the whole file (%d bytes)", w.Body.Len())
						}
					case len(tc.parts) == 1:
						p := tc.parts[0]
						wantCR := "bytes " + strconv.Itoa(p.start) + "-" + strconv.Itoa(p.end) + "/10000"
						if got := w.Header().Get("Content-Range"); got != wantCR {
							t.Fatalf("Content-Range %q, want %q", got, wantCR)
						}
						if !bytes.Equal(w.Body.Bytes(), content[p.start:p.end+1]) {
							t.Fatalf("body %q", w.Body.String())
						}
						if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(p.end-p.start+1) {
							t.Fatalf("Content-Length %s", cl)
						}
					case len(tc.parts) > 1:
						checkMultipart(t, w, content, tc.parts)
					}
				})
			}
		})
	}
}

// part is an inclusive byte span expected in a 206 response.
type part struct{ start, end int }

func checkMultipart(t *testing.T, w *httptest.ResponseRecorder, content []byte, parts []part) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(w.Header().Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("Content-Type %q", w.Header().Get("Content-Type"))
	}
	if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
		t.Fatalf("Content-Length %s, body is %d bytes", cl, w.Body.Len())
	}
	mr := multipart.NewReader(bytes.NewReader(w.Body.Bytes()), params["boundary"])
	for i, p := range parts {
		pr, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		wantCR := "bytes " + strconv.Itoa(p.start) + "-" + strconv.Itoa(p.end) + "/" + strconv.Itoa(len(content))
		if got := pr.Header.Get("Content-Range"); got != wantCR {
			t.Fatalf("part %d Content-Range %q, want %q", i, got, wantCR)
		}
		if got := pr.Header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
			t.Fatalf("part %d Content-Type %q", i, got)
		}
		b, _ := io.ReadAll(pr)
		if !bytes.Equal(b, content[p.start:p.end+1]) {
			t.Fatalf("part %d body %q", i, b)
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Fatalf("after %d parts: %v, want EOF", len(parts), err)
	}
}

// The cache re-checks files on the first request after its Revalidate interval:
// each case polls until the change shows.
func TestCacheNoticesChanges(t *testing.T) {
	site := newSite(t)
	h := newHandler(t, Options{Root: site, Revalidate: 20 * time.Millisecond})
	get := func(target string, headers ...string) *httptest.ResponseRecorder {
		return do(h, "GET", target, headers...)
	}
	name := filepath.Join(site, "hello.txt")

	if b := get("/hello.txt").Body.String(); b != "hello, world\n" {
		t.Fatalf("body %q", b)
	}
	t.Run("rewritten in place", func(t *testing.T) {
		writeFile(t, name, "changed\n")
		peertest.WaitFor(t, 5*time.Second, "new content is served", func() bool { return get("/hello.txt").Body.String() == "changed\n" })
	})
	t.Run("same size, new mtime", func(t *testing.T) {
		writeFile(t, name, "CHANGED\n")
		later := time.Now().Add(time.Hour)
		os.Chtimes(name, later, later)
		peertest.WaitFor(t, 5*time.Second, "same-size rewrite is served", func() bool { return get("/hello.txt").Body.String() == "CHANGED\n" })
	})
	t.Run("replaced by rename", func(t *testing.T) {
		tmp := filepath.Join(site, "hello.txt.tmp")
		writeFile(t, tmp, "renamed\n")
		if err := os.Rename(tmp, name); err != nil {
			t.Fatal(err)
		}
		peertest.WaitFor(t, 5*time.Second, "renamed file is served", func() bool { return get("/hello.txt").Body.String() == "renamed\n" })
	})
	t.Run("grows past the cache limit", func(t *testing.T) {
		big := strings.Repeat("x", defaultCacheMaxFileSize+1)
		writeFile(t, name, big)
		peertest.WaitFor(t, 5*time.Second, "large file is served from disk", func() bool { return get("/hello.txt").Body.String() == big })
	})
	t.Run("deleted", func(t *testing.T) {
		get("/sub/page.html")
		os.Remove(filepath.Join(site, "sub/page.html"))
		peertest.WaitFor(t, 5*time.Second, "deleted file is 404", func() bool { return get("/sub/page.html").Code == 404 })
	})
	t.Run("precompressed sibling added", func(t *testing.T) {
		writeFile(t, filepath.Join(site, "sub/app.js"), "console.log(1)\n")
		if w := get("/sub/app.js", "Accept-Encoding", "gzip"); w.Header().Get("Content-Encoding") != "" || w.Header().Get("Vary") != "" {
			t.Fatalf("no sibling yet, got Content-Encoding %q Vary %q", w.Header().Get("Content-Encoding"), w.Header().Get("Vary"))
		}
		writeFile(t, filepath.Join(site, "sub/app.js.gz"), "pretend-gzip")
		peertest.WaitFor(t, 5*time.Second, "new .gz sibling is used", func() bool {
			w := get("/sub/app.js", "Accept-Encoding", "gzip")
			return w.Body.String() == "pretend-gzip" && w.Header().Get("Vary") == "Accept-Encoding"
		})
	})
}

func TestCacheServesFromMemory(t *testing.T) {
	site := newSite(t)
	h := newHandler(t, Options{Root: site, Revalidate: time.Hour})
	if w := do(h, "GET", "/hello.txt"); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	// Within the revalidation interval a cached file is answered without
	// touching the file system, so it outlives its deletion.
	os.Remove(filepath.Join(site, "hello.txt"))
	if w := do(h, "GET", "/hello.txt"); w.Code != 200 || w.Body.String() != "hello, world\n" {
		t.Fatalf("status %d body %q, want the cached file", w.Code, w.Body.String())
	}
}

func TestCacheBounded(t *testing.T) {
	site := newSite(t)
	const files, size = 50, 1000
	for i := 0; i < files; i++ {
		writeFile(t, filepath.Join(site, "many", strconv.Itoa(i)+".txt"), strings.Repeat("y", size))
	}
	limit := int64(10 * (size + entryOverhead))
	h := newHandler(t, Options{Root: site, CacheMaxBytes: limit})
	for i := 0; i < files; i++ {
		if w := do(h, "GET", "/many/"+strconv.Itoa(i)+".txt"); w.Code != 200 || w.Body.Len() != size {
			t.Fatalf("file %d: status %d, %d bytes", i, w.Code, w.Body.Len())
		}
	}
	c := h.state.Load().cache
	n := 0
	c.m.Range(func(_, _ any) bool { n++; return true })
	if c.used > limit || n > 10 || n == 0 {
		t.Fatalf("cache holds %d entries, %d bytes; limit %d bytes", n, c.used, limit)
	}
}

func TestRootSymlinkSwap(t *testing.T) {
	base := t.TempDir()
	for _, v := range []string{"v1", "v2"} {
		writeFile(t, filepath.Join(base, v, "version.txt"), v+"\n")
	}
	current := filepath.Join(base, "current")
	if err := os.Symlink("v1", current); err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, Options{Root: current, Revalidate: 20 * time.Millisecond})
	if b := do(h, "GET", "/version.txt").Body.String(); b != "v1\n" {
		t.Fatalf("body %q", b)
	}
	// A deploy that swaps the symlink atomically, as Capistrano-style tools do.
	tmp := filepath.Join(base, "current.tmp")
	if err := os.Symlink("v2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, current); err != nil {
		t.Fatal(err)
	}
	peertest.WaitFor(t, 5*time.Second, "the new release is served", func() bool { return do(h, "GET", "/version.txt").Body.String() == "v2\n" })
}

func TestFIFONotOpened(t *testing.T) {
	site := newSite(t)
	if err := syscall.Mkfifo(filepath.Join(site, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, Options{Root: site})
	done := make(chan int, 1)
	go func() { done <- do(h, "GET", "/pipe").Code }()
	select {
	case code := <-done:
		if code != 404 {
			t.Fatalf("status %d, want 404", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request for a FIFO hung")
	}
}

// readFromRecorder records what reaches ReadFrom: net/http's response implements
// io.ReaderFrom and uses sendfile(2) when handed an *os.File (bare or in an
// io.LimitedReader), so this is what decides whether sendfile happens.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	fromFile bool
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	inner := src
	if lr, ok := src.(*io.LimitedReader); ok {
		inner = lr.R
	}
	_, r.fromFile = inner.(*os.File)
	return io.Copy(r.ResponseRecorder, src)
}

func TestLargeFileGoesToSendfile(t *testing.T) {
	site := newSite(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MB
	writeFile(t, filepath.Join(site, "big.bin"), string(big))
	for _, tc := range []struct {
		name  string
		opts  Options
		rng   string
		start int
		end   int
	}{
		{"pooled whole file", Options{}, "", 0, len(big)},
		{"pooled range", Options{}, "bytes=1000-499999", 1000, 500000},
		{"disk whole file", Options{CacheMaxBytes: -1}, "", 0, len(big)},
		{"disk range", Options{CacheMaxBytes: -1}, "bytes=1000-499999", 1000, 500000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Root = site
			h := newHandler(t, tc.opts)
			rec := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
			r := httptest.NewRequest("GET", "/big.bin", nil)
			if tc.rng != "" {
				r.Header.Set("Range", tc.rng)
			}
			h.ServeHTTP(rec, r)
			if !rec.fromFile {
				t.Fatal("body was not handed to ReadFrom as an *os.File: no sendfile")
			}
			if !bytes.Equal(rec.Body.Bytes(), big[tc.start:tc.end]) {
				t.Fatalf("body differs (%d bytes)", rec.Body.Len())
			}
		})
	}
	t.Run("through a real server", func(t *testing.T) {
		addr := serve(t, newHandler(t, Options{Root: site}))
		resp, body := rawGet(t, addr, "/big.bin")
		if resp.StatusCode != 200 || body != string(big) {
			t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
		}
	})
}

func TestConcurrentRequestsWhileFilesChange(t *testing.T) {
	site := newSite(t)
	name := filepath.Join(site, "v.txt")
	versions := []string{"version one\n", "version two, longer\n", strings.Repeat("three ", 100)}
	writeFile(t, name, versions[0])
	h := newHandler(t, Options{Root: site, Revalidate: time.Millisecond})
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tmp := name + ".tmp"
			os.WriteFile(tmp, []byte(versions[i%len(versions)]), 0o644)
			os.Rename(tmp, name)
		}
	}()
	valid := map[string]bool{}
	for _, v := range versions {
		valid[v] = true
	}
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 300; i++ {
				w := do(h, "GET", "/v.txt")
				body := w.Body.String()
				if w.Code != 200 || !valid[body] || w.Header().Get("Content-Length") != strconv.Itoa(len(body)) {
					errs <- fmt.Sprintf("status %d, Content-Length %s, body %q", w.Code, w.Header().Get("Content-Length"), body)
					return
				}
			}
			errs <- ""
		}()
	}
	for g := 0; g < 8; g++ {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
	close(stop)
	<-writerDone
}

// openFDs counts this process's descriptors open on dir or files under it, so
// that descriptors of other tests (closed by finalizers at any time) do not count.
func openFDs(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && (target == dir || strings.HasPrefix(target, dir+"/")) {
			n++
		}
	}
	return n
}

func TestPooledDescriptorsBounded(t *testing.T) {
	site := newSite(t)
	const files = 20
	for i := 0; i < files; i++ {
		writeFile(t, filepath.Join(site, "big", strconv.Itoa(i)+".bin"), strings.Repeat(strconv.Itoa(i%10), 100<<10))
	}
	h := newHandler(t, Options{Root: site, MaxOpenFiles: 4, Revalidate: time.Millisecond})
	getAll := func(suffix string) {
		for i := 0; i < files; i++ {
			want := strings.Repeat(strconv.Itoa(i%10), 100<<10) + suffix
			peertest.WaitFor(t, 5*time.Second, "file "+strconv.Itoa(i)+" is current", func() bool {
				return do(h, "GET", "/big/"+strconv.Itoa(i)+".bin").Body.String() == want
			})
		}
	}
	getAll("")
	if n := h.fds.n.Load(); n > 4 {
		t.Fatalf("pools hold %d descriptors, limit 4", n)
	}
	// Replacing every file retires the old pools; their descriptors are closed.
	for i := 0; i < files; i++ {
		name := filepath.Join(site, "big", strconv.Itoa(i)+".bin")
		writeFile(t, name+".tmp", strings.Repeat(strconv.Itoa(i%10), 100<<10)+"v2")
		os.Rename(name+".tmp", name)
	}
	getAll("v2")
	if n := h.fds.n.Load(); n > 4 {
		t.Fatalf("pools hold %d descriptors after replacement, limit 4", n)
	}
	// The handler's own descriptors: the root's 2, and at most 4 pooled files.
	if n := openFDs(t, site); n > 2+4 {
		t.Fatalf("%d descriptors open on the site: leak", n)
	}
}

func TestPooledFileReplacedWithinWindow(t *testing.T) {
	site := newSite(t)
	first := strings.Repeat("a", 100<<10)
	writeFile(t, filepath.Join(site, "a.bin"), first)
	writeFile(t, filepath.Join(site, "b.bin"), first)
	// One descriptor in all: a.bin's pool takes it, so b.bin opens per request
	// and must notice it now opens a different file than the one cached.
	h := newHandler(t, Options{Root: site, MaxOpenFiles: 1, Revalidate: time.Hour})
	do(h, "GET", "/a.bin")
	if w := do(h, "GET", "/b.bin"); w.Body.String() != first {
		t.Fatalf("b.bin: %d bytes", w.Body.Len())
	}
	second := strings.Repeat("b", 50<<10)
	name := filepath.Join(site, "b.bin")
	writeFile(t, name+".tmp", second)
	if err := os.Rename(name+".tmp", name); err != nil {
		t.Fatal(err)
	}
	w := do(h, "GET", "/b.bin")
	if w.Body.String() != second || w.Header().Get("Content-Length") != strconv.Itoa(len(second)) {
		t.Fatalf("after replacement: Content-Length %s, %d bytes; want the new %d-byte file",
			w.Header().Get("Content-Length"), w.Body.Len(), len(second))
	}
}

func TestShutdownReleasesDescriptors(t *testing.T) {
	site := newSite(t)
	big := strings.Repeat("s", 200<<10)
	for i := 0; i < 5; i++ {
		writeFile(t, filepath.Join(site, strconv.Itoa(i)+".bin"), big)
	}
	h := newHandler(t, Options{Root: site})
	for i := 0; i < 5; i++ {
		do(h, "GET", "/"+strconv.Itoa(i)+".bin")
	}
	// The root is held twice: as an os.Root and as a descriptor for openat2.
	if n := openFDs(t, site); n != 2+5 {
		t.Fatalf("%d descriptors open on the site, want the root's 2 and 5 pooled files", n)
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Still answering afterwards, without keeping descriptors.
	for i := 0; i < 5; i++ {
		if w := do(h, "GET", "/"+strconv.Itoa(i)+".bin"); w.Code != 200 || w.Body.Len() != len(big) {
			t.Fatalf("after Shutdown: status %d, %d bytes", w.Code, w.Body.Len())
		}
	}
	if n := openFDs(t, site); n != 2 {
		t.Fatalf("%d descriptors open on the site after Shutdown, want only the root's 2", n)
	}
	// The root's descriptors are closed when the Handler is collected: h must
	// stay reachable until it has been counted.
	runtime.KeepAlive(h)
}
