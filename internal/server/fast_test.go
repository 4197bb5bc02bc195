package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/internal/accesslog"
	"gantry/internal/config"
)

// fastPair starts two servers on the same files, one with the fast path and one
// without, and warms both caches.
func fastPair(t *testing.T) (fast, slow *Server, fastAddr, slowAddr string, etag, lastMod string) {
	t.Helper()
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a.txt"), "hello, fast path\n")
	writeFile(t, filepath.Join(root, "page.html"), "<!doctype html><title>x</title>")
	writeFile(t, filepath.Join(root, "style.css"), strings.Repeat("body{color:red}\n", 100))
	writeFile(t, filepath.Join(root, "style.css.gz"), "not really gzip, but a sibling")
	writeFile(t, filepath.Join(root, "big.bin"), strings.Repeat("0123456789abcdef", 100<<10/16))
	writeFile(t, filepath.Join(root, "mid.bin"), strings.Repeat("z", 30<<10))
	writeFile(t, filepath.Join(root, "dir", "index.html"), "index")
	writeFile(t, filepath.Join(root, ".env"), "SECRET=1")
	// Never requested before a case: each is answered from disk, not the cache.
	for _, name := range []string{"cold-get.txt", "cold-head.txt", "cold-range.txt", "cold-ims.txt"} {
		writeFile(t, filepath.Join(root, name), "answered from disk\n")
	}
	writeFile(t, filepath.Join(root, "cold-big.bin"), strings.Repeat("fedcba9876543210", 200<<10/16))
	writeFile(t, filepath.Join(root, "cold.css"), strings.Repeat("p{margin:0}\n", 100))
	writeFile(t, filepath.Join(root, "cold.css.br"), "a brotli sibling")
	writeFile(t, filepath.Join(root, "nodir", "a.txt"), "a directory without an index")
	conf := func(fastPath bool) string {
		return fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\nfast_path=%v\n[admin]\nlisten=\"off\"\n"+
			"[[site]]\nroot=%q\n  [[site.route]]\n  path=\"/up/\"\n  proxy=\"http://127.0.0.1:1\"\n", fastPath, root)
	}
	fast, fb, _ := startServer(t, conf(true))
	slow, sb, _ := startServer(t, conf(false))
	for _, base := range []string{fb, sb} {
		for _, p := range []string{"/a.txt", "/page.html", "/style.css", "/big.bin", "/mid.bin", "/dir/"} {
			for _, ae := range []string{"", "gzip"} {
				req, _ := http.NewRequest("GET", base+p, nil)
				req.Header.Set("Accept-Encoding", ae)
				resp, err := http.DefaultTransport.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if p == "/a.txt" {
					etag, lastMod = resp.Header.Get("Etag"), resp.Header.Get("Last-Modified")
				}
			}
		}
	}
	return fast, slow, strings.TrimPrefix(fb, "http://"), strings.TrimPrefix(sb, "http://"), etag, lastMod
}

// exchange sends raw on a new connection, half-closing it when halfClose is set,
// and returns all the server sends until it closes the connection.
func exchange(t *testing.T, addr, raw string, halfClose bool) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		io.WriteString(c, raw)
		if halfClose {
			c.(*net.TCPConn).CloseWrite()
		}
	}()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading answer: %v (got %q)", err, b)
	}
	return string(b)
}

var dateLine = regexp.MustCompile(`(?m)^Date: [^\r]*\r$`)

// boundary matches a multipart/byteranges boundary, random (in length too) in
// every answer, and multipartLength the length that therefore varies.
var (
	boundary        = regexp.MustCompile(`boundary=[0-9a-z]+|\r\n--[0-9a-z]{20,}`)
	multipartLength = regexp.MustCompile(`Content-Length: \d+(\r\nContent-Type: multipart/byteranges)`)
)

// sameMultipart makes two answers' multipart boundaries and lengths alike.
func sameMultipart(s string) string {
	s = multipartLength.ReplaceAllString(s, "Content-Length: -$1")
	return boundary.ReplaceAllStringFunc(s, func(b string) string {
		if strings.HasPrefix(b, "boundary=") {
			return "boundary=B"
		}
		return "\r\n--B"
	})
}

// closing ends every exchange, so that both servers close the connection after
// answering it and the test needs no read timeout to know it has everything.
const closing = "GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

// TestFastPathDifferential sends the same bytes to a server with the fast path and
// one without and requires the same bytes back (Date aside), and that the fast
// server answered exactly the requests expected on the fast path.
func TestFastPathDifferential(t *testing.T) {
	fast, _, fa, sa, etag, lastMod := fastPair(t)
	get := func(path string, hdrs ...string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + strings.Join(hdrs, "") + "\r\n"
	}
	cases := []struct {
		name string
		raw  string
		fast int // requests expected on the fast path, the final closing one included
		half bool
	}{
		{"get", get("/a.txt"), 2, false},
		{"head", "HEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\n", 2, false},
		{"pipelined", get("/a.txt") + get("/page.html") + get("/style.css"), 4, false},
		{"lowercase names and port in host", "GET /a.txt HTTP/1.1\r\nhost: X:8080\r\nuser-agent: t\r\n\r\n", 2, false},
		{"query", get("/a.txt?v=1&x=%41"), 2, false},
		{"empty query", get("/a.txt?"), 2, false},
		{"content-length 0", get("/a.txt", "Content-Length: 0\r\n"), 2, false},
		{"http/1.0 closes", "GET /a.txt HTTP/1.0\r\n\r\n" + closing, 1, false},
		{"http/1.0 keep-alive", "GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 2, false},
		{"http/1.0 keep-alive head", "HEAD /a.txt HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 2, false},
		{"connection close", get("/a.txt", "Connection: close\r\n") + closing, 1, false},
		{"if-none-match 304", get("/a.txt", "If-None-Match: "+etag+"\r\n"), 2, false},
		{"if-none-match other", get("/a.txt", "If-None-Match: \"nope\"\r\n"), 2, false},
		{"if-modified-since 304", get("/a.txt", "If-Modified-Since: "+lastMod+"\r\n"), 2, false},
		{"http/1.0 keep-alive 304", "GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\nIf-None-Match: " + etag + "\r\n\r\n", 2, false},
		{"gzip sibling", get("/style.css", "Accept-Encoding: gzip, br\r\n"), 2, false},
		{"identity with vary", get("/style.css", "Accept-Encoding: identity\r\n"), 2, false},
		{"mid-size writev", get("/mid.bin"), 2, false},
		{"large sendfile", get("/big.bin"), 2, false},
		{"large head", "HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n", 2, false},
		{"index", get("/dir/"), 2, false},
		{"cache-control and others pass", get("/a.txt", "Accept: */*\r\nCookie: a=b\r\n"), 2, false},

		// Static requests the cache does not answer: the handler runs on the fast
		// path, from disk.
		{"range", get("/a.txt", "Range: bytes=0-3\r\n"), 2, false},
		{"fast then range", get("/a.txt") + get("/big.bin", "Range: bytes=10-20\r\n"), 3, false},
		{"multipart range", get("/big.bin", "Range: bytes=0-3,100-200\r\n"), 2, false},
		{"unsatisfiable range", get("/a.txt", "Range: bytes=900-\r\n"), 2, false},
		{"if-range", get("/a.txt", "Range: bytes=0-3\r\nIf-Range: "+etag+"\r\n"), 2, false},
		{"if-match", get("/a.txt", "If-Match: \"x\"\r\n"), 2, false},
		{"if-unmodified-since", get("/a.txt", "If-Unmodified-Since: Mon, 02 Jan 2006 15:04:05 GMT\r\n"), 2, false},
		{"miss", get("/nothing.txt"), 2, false},
		{"miss head", "HEAD /nothing.txt HTTP/1.1\r\nHost: x\r\n\r\n", 2, false},
		{"directory redirect", get("/dir"), 2, false},
		{"directory without index", get("/nodir/"), 2, false},
		{"file as directory", get("/a.txt/"), 2, false},
		{"cold file", get("/cold-get.txt"), 2, false},
		{"cold head", "HEAD /cold-head.txt HTTP/1.1\r\nHost: x\r\n\r\n", 2, false},
		{"cold range", get("/cold-range.txt", "Range: bytes=2-5\r\n"), 2, false},
		{"cold if-modified-since", get("/cold-ims.txt", "If-Modified-Since: Mon, 02 Jan 2036 15:04:05 GMT\r\n"), 2, false},
		{"cold sendfile", get("/cold-big.bin"), 2, false},
		{"cold brotli sibling", get("/cold.css", "Accept-Encoding: br\r\n"), 2, false},

		// Everything below goes to net/http, at the first request not eligible.
		{"post", "POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", 0, false},
		{"options star", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 0, false},
		{"dotfile", get("/.env"), 0, false},
		{"dot segment", get("/dir/../a.txt"), 0, false},
		{"encoded dots", get("/%2e%2e/a.txt"), 0, false},
		{"encoded slash", get("/dir%2findex.html"), 0, false},
		{"double slash", get("//a.txt"), 0, false},
		{"backslash", get("/..\\a.txt"), 0, false},
		{"proxy route", get("/up/x"), 0, false},
		{"no host", "GET /a.txt HTTP/1.1\r\n\r\n", 0, false},
		{"http/1.0 no host", "GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + closing, 2, false},
		{"two hosts", get("/a.txt", "Host: y\r\n"), 0, false},
		{"bad host", "GET /a.txt HTTP/1.1\r\nHost: a b\r\n\r\n", 0, false},
		{"expect", get("/a.txt", "Expect: 100-continue\r\n"), 0, false},
		{"upgrade", get("/a.txt", "Connection: Upgrade\r\nUpgrade: websocket\r\n"), 0, false},
		{"absolute form", "GET http://x/a.txt HTTP/1.1\r\nHost: x\r\n\r\n", 0, false},
		{"http/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, false},
		{"http/1.2", "GET /a.txt HTTP/1.2\r\nHost: x\r\n\r\n", 0, false},
		{"lowercase method", "get /a.txt HTTP/1.1\r\nHost: x\r\n\r\n", 0, false},
		{"garbage", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 0, false},

		// Smuggling shapes: never answered on the fast path.
		{"cl and te", "GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, false},
		{"te with cl 0", "GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, false},
		{"two content-lengths", get("/a.txt", "Content-Length: 0\r\nContent-Length: 5\r\n") + "hello", 0, false},
		{"two zero content-lengths", get("/a.txt", "Content-Length: 0\r\ncontent-length: 0\r\n"), 0, false},
		{"content-length body", get("/a.txt", "Content-Length: 5\r\n") + "GET /", 0, false},
		{"bare lf", "GET /a.txt HTTP/1.1\nHost: x\n\n" + closing, 0, false},
		{"bare lf in one line", "GET /a.txt HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 0, false},
		{"obs-fold", "GET /a.txt HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", 0, false},
		{"space before colon", "GET /a.txt HTTP/1.1\r\nHost : x\r\n\r\n", 0, false},
		{"space before colon te", get("/a.txt", "Transfer-Encoding : chunked\r\n") + "0\r\n\r\n", 0, false},
		{"nul in value", get("/a.txt", "X-A: b\x00c\r\n"), 0, false},
		{"cr in value", get("/a.txt", "X-A: b\rc\r\n"), 0, false},
		{"empty name", get("/a.txt", ": x\r\n"), 0, false},
		{"bad connection token", get("/a.txt", "Connection: close, x-a\r\n"), 0, false},
		{"big head", get("/a.txt", "X-Big: "+strings.Repeat("b", 20<<10)+"\r\n"), 0, false},
		{"too big head", get("/a.txt", "X-Big: "+strings.Repeat("b", 80<<10)+"\r\n"), 0, false},
		{"many fields", get("/a.txt", strings.Repeat("X-A: 1\r\nX-B: 2\r\n", 20)+strings.Repeat("X-C: 3\r\n", 30)), 0, false},
		{"partial then eof", "GET /a.txt HTTP/1.1\r\nHost: x\r\n", 0, true},
		{"fast then partial then eof", get("/a.txt") + "GET /a.t", 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.raw
			if !tc.half {
				raw += closing
			}
			before := fast.fastHits.Load()
			got := exchange(t, fa, raw, tc.half)
			served := int(fast.fastHits.Load() - before)
			want := exchange(t, sa, raw, tc.half)
			got, want = dateLine.ReplaceAllString(got, "Date: -\r"), dateLine.ReplaceAllString(want, "Date: -\r")
			got, want = sameMultipart(got), sameMultipart(want)
			if got != want {
				t.Errorf("fast path answered\n%.2000q\nnet/http answered\n%.2000q", got, want)
			}
			if want == "" {
				t.Errorf("no answer at all: the case tests nothing")
			}
			if served != tc.fast {
				t.Errorf("%d requests answered on the fast path, want %d", served, tc.fast)
			}
		})
	}
}

// TestFastPathObserved checks that fast requests reach the observers with the
// request's fields, and are counted.
func TestFastPathObserved(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a.txt"), "hello")
	srv, base, _ := startServer(t, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n[[site]]\nroot=%q\n", root))
	var mu sync.Mutex
	var recs []accesslog.Record
	var uas []string
	srv.Observe(func(rec *accesslog.Record) {
		mu.Lock()
		defer mu.Unlock()
		r := *rec
		r.Request = nil
		recs = append(recs, r)
		uas = append(uas, rec.Request.Header.Get("User-Agent"))
	})
	get(t, base+"/a.txt", "") // caches the file
	addr := strings.TrimPrefix(base, "http://")
	before := srv.fastHits.Load()
	exchange(t, addr, "GET /a.txt?q=1 HTTP/1.1\r\nHost: Example.COM\r\nUser-Agent: probe/1\r\nReferer: http://r/\r\n\r\n"+
		"HEAD /a.txt HTTP/1.1\r\nHost: x\r\nUser-Agent: probe/2\r\nConnection: close\r\n\r\n", false)
	if n := srv.fastHits.Load() - before; n != 2 {
		t.Fatalf("%d requests on the fast path, want 2", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	r := recs[1]
	if r.Method != "GET" || r.URI != "/a.txt?q=1" || r.Host != "Example.COM" || r.Status != 200 || r.Bytes != 5 ||
		r.UserAgent != "probe/1" || r.Referer != "http://r/" || r.Proto != "HTTP/1.1" || r.Site != "default" || r.Route != "/" ||
		!strings.HasPrefix(r.RemoteAddr, "127.0.0.1:") {
		t.Errorf("record %+v", r)
	}
	if r := recs[2]; r.Method != "HEAD" || r.Bytes != 0 || uas[2] != "probe/2" {
		t.Errorf("record %+v, user agent %q", r, uas[2])
	}
	if srv.requests.Load() != 3 {
		t.Errorf("requests counted %d, want 3", srv.requests.Load())
	}
}

// TestFastPathReload checks that a reload applies to the next request on an open
// fast connection.
func TestFastPathReload(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(a, "x.txt"), "from a")
	writeFile(t, filepath.Join(b, "x.txt"), "from b")
	conf := "[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n[[site]]\nroot=%q\n"
	srv, base, file := startServer(t, fmt.Sprintf(conf, a))
	get(t, base+"/x.txt", "")
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	ask := func() string {
		io.WriteString(c, "GET /x.txt HTTP/1.1\r\nHost: x\r\n\r\n")
		buf := make([]byte, 4096)
		var got []byte
		for !bytes.HasSuffix(got, []byte("from a")) && !bytes.HasSuffix(got, []byte("from b")) {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("read: %v after %q", err, got)
			}
			got = append(got, buf[:n]...)
		}
		return string(got[len(got)-6:])
	}
	if got := ask(); got != "from a" {
		t.Fatalf("before reload: %q", got)
	}
	writeFile(t, file, fmt.Sprintf(conf, b))
	if err := srv.Reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	before := srv.fastHits.Load()
	// The new root's cache is cold: its first answer comes from disk, the
	// second from the cache, both on the same fast connection.
	if got := ask(); got != "from b" {
		t.Fatalf("after reload: %q", got)
	}
	if got := ask(); got != "from b" {
		t.Fatalf("after reload, again: %q", got)
	}
	if n := srv.fastHits.Load() - before; n != 2 {
		t.Errorf("%d of the 2 answers after the reload came from the fast path", n)
	}
}

// TestFastPathShutdown checks that Shutdown closes idle fast connections and
// returns (internal/http1's tests cover a request in flight).
func TestFastPathShutdown(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a.txt"), "hello")
	srv, base, _ := startServer(t, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n[[site]]\nroot=%q\n", root))
	addr := strings.TrimPrefix(base, "http://")
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(idle, "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 4096)
	if n, err := idle.Read(buf); err != nil || !bytes.HasSuffix(buf[:n], []byte("hello")) {
		t.Fatalf("first answer %q, %v", buf[:n], err)
	}
	if srv.fastHits.Load() != 1 {
		t.Fatalf("the request was not answered on the fast path")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if n, err := idle.Read(buf); err != io.EOF {
		t.Errorf("idle connection: read %q, %v; want EOF", buf[:n], err)
	}
}

// BenchmarkFastStatic measures a keep-alive GET of a cached 1 KB file through the
// whole server (routing, static handler, response) with the fast path on and off;
// allocs/op counts the server's allocations (the client's loop makes none).
func BenchmarkFastStatic(b *testing.B) {
	for _, fastPath := range []bool{true, false} {
		b.Run(fmt.Sprintf("fast_path=%v", fastPath), func(b *testing.B) {
			root := b.TempDir()
			body := strings.Repeat("x", 1024)
			if err := os.WriteFile(filepath.Join(root, "1k.txt"), []byte(body), 0o644); err != nil {
				b.Fatal(err)
			}
			file := filepath.Join(b.TempDir(), "gantry.toml")
			conf := fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\nfast_path=%v\n[admin]\nlisten=\"off\"\n[[site]]\nroot=%q\n", fastPath, root)
			if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
				b.Fatal(err)
			}
			cfg, err := config.Load(file)
			if err != nil {
				b.Fatal(err)
			}
			srv, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			srv.Serve()
			b.Cleanup(func() { srv.Shutdown(context.Background()) })
			addr := srv.Addrs()[0].String()
			// The first request caches the file (and goes to net/http on its own connection).
			resp, err := http.Get("http://" + addr + "/1k.txt")
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET /1k.txt HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			buf := make([]byte, 8192)
			tail := []byte(body[:64])
			b.ReportAllocs()
			for b.Loop() {
				c.Write(req)
				got := 0
				for !bytes.HasSuffix(buf[:got], tail) {
					n, err := c.Read(buf[got:])
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
		})
	}
}
