package fastcgi

import (
	"gantry/internal/config"

	"gantry/internal/peertest"
	"gantry/internal/spool/spooltest"

	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPHPFPMHello(t *testing.T) {
	addr := peertest.PHPFPM(t, "")
	srv, _, _ := serve(t, Options{Address: addr, Route: "*.php"}, nil)
	resp, body := get(t, srv.URL+"/hello.php")
	if resp.StatusCode != 200 || body != "Hello, World!" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("small response not sent with Content-Length (got %d): it was flushed early", resp.ContentLength)
	}
}

func TestPHPFPMParams(t *testing.T) {
	addr := peertest.PHPFPM(t, "")
	root := wwwRoot(t)
	srv, _, _ := serve(t, Options{Address: addr, Route: "*.php"}, nil)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	tests := []struct {
		name   string
		target string
		header map[string]string
		want   map[string]string
		absent []string
	}{
		{
			name: "plain script", target: "/env.php",
			want: map[string]string{"SCRIPT_NAME": "/env.php", "SCRIPT_FILENAME": root + "/env.php",
				"DOCUMENT_ROOT": root, "DOCUMENT_URI": "/env.php", "REQUEST_URI": "/env.php", "QUERY_STRING": "",
				"REQUEST_METHOD": "GET", "SERVER_PORT": port, "SERVER_ADDR": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1",
				"SERVER_NAME": "example.test", "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1",
				"SERVER_SOFTWARE": "gantry", "REDIRECT_STATUS": "200", "REQUEST_SCHEME": "http", "PHP_SELF": "/env.php", "PATH_INFO": ""},
			absent: []string{"PATH_TRANSLATED", "HTTPS"},
		},
		{
			name: "path info and query", target: "/env.php/extra/x%20y?q=1&r=%41",
			want: map[string]string{"SCRIPT_NAME": "/env.php", "PATH_INFO": "/extra/x y",
				"PATH_TRANSLATED": root + "/extra/x y", "QUERY_STRING": "q=1&r=%41",
				"REQUEST_URI": "/env.php/extra/x%20y?q=1&r=%41", "SCRIPT_FILENAME": root + "/env.php"},
		},
		{
			name: "request uri stays as sent", target: "/%65nv.php",
			want: map[string]string{"SCRIPT_NAME": "/env.php", "REQUEST_URI": "/%65nv.php"},
		},
		{
			name: "dot segments resolved inside the root", target: "/sub/../env.php",
			want: map[string]string{"SCRIPT_NAME": "/env.php", "SCRIPT_FILENAME": root + "/env.php", "REQUEST_URI": "/sub/../env.php"},
		},
		{
			name: "httpoxy: no HTTP_PROXY", target: "/env.php",
			header: map[string]string{"Proxy": "http://evil.example:3128", "X-Custom": "yes"},
			want:   map[string]string{"HTTP_X_CUSTOM": "yes"},
			absent: []string{"HTTP_PROXY"},
		},
		{
			name: "authorization passed to PHP", target: "/env.php",
			header: map[string]string{"Authorization": "Bearer t0ken"},
			want:   map[string]string{"HTTP_AUTHORIZATION": "Bearer t0ken"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := "GET " + tt.target + " HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n"
			for k, v := range tt.header {
				req += k + ": " + v + "\r\n"
			}
			status, body := rawRequest(t, srv.URL, req+"\r\n")
			if status != 200 {
				t.Fatalf("status %d: %s", status, body)
			}
			env := parseEnv(body)
			for k, v := range tt.want {
				if env[k] != v {
					t.Errorf("%s = %q, want %q", k, env[k], v)
				}
			}
			for _, k := range tt.absent {
				if v, ok := env[k]; ok {
					t.Errorf("%s = %q, want it unset", k, v)
				}
			}
		})
	}
}

func TestPHPFPMHTTPS(t *testing.T) {
	addr := peertest.PHPFPM(t, "")
	h, err := New(Options{Address: addr, Route: "*.php", Root: wwwRoot(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Shutdown(t.Context()) })
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	c := srv.Client()
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	resp, err := c.Get(srv.URL + "/env.php")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	env := parseEnv(string(b))
	if env["HTTPS"] != "on" || env["REQUEST_SCHEME"] != "https" {
		t.Fatalf("HTTPS=%q REQUEST_SCHEME=%q, want on/https", env["HTTPS"], env["REQUEST_SCHEME"])
	}
}

func TestPHPRouting(t *testing.T) {
	addr := peertest.PHPFPM(t, "")
	srv, _, _ := serve(t, Options{Address: addr, Route: "/"}, nil)
	kelvin := "\u212a" // lower-cases to 1-byte "k": shifts indices if folding is not ASCII-only
	tests := []struct {
		name, target string
		status       int
		body         string // substring, when set
		location     string
	}{
		{name: "directory redirects to its slash", target: "/dir", status: 301, location: "/dir/"},
		{name: "redirect keeps the query", target: "/dir?a=1", status: 301, location: "/dir/?a=1"},
		{name: "redirect stays on this site", target: "//evil.example/../dir", status: 301, location: "/dir/"},
		{name: "directory runs index.php", target: "/dir/", status: 200, body: "dir index /dir/index.php"},
		{name: "directory without index", target: "/noindex/", status: 404},
		{name: "missing script answered by gantry", target: "/missing.php", status: 404, body: "404 page not found"},
		{name: "missing script with path info", target: "/missing.php/x", status: 404},
		{name: "split skips a directory named .php", target: "/dir.php/real.php", status: 200, body: "real /dir.php/real.php"},
		{name: "path info after a nested script", target: "/sub/page.php/a/b", status: 200, body: "sub page /sub/page.php /a/b"},
		{name: "upload never executed via /.php", target: "/uploads/x.jpg/.php", status: 404},
		{name: "upload never executed via fix_pathinfo", target: "/uploads/x.jpg/foo.php", status: 404},
		{name: "non-script file not executed", target: "/uploads/x.jpg", status: 404},
		{name: "unicode folding cannot shift the split", target: "/uploads/x.jpg" + kelvin + kelvin + ".php", status: 404},
		{name: "extension must end the segment", target: "/hello.php.jpg", status: 404},
		{name: "upper-case extension on a missing file", target: "/HELLO.PHP", status: 404},
		{name: "NUL rejected", target: "/hello.php%00.jpg", status: 400},
		{name: "CVE-2019-11043 newline rejected", target: "/env.php/%0Ais_the_shittiest_lang.php?" + strings.Repeat("Q", 1800), status: 400},
		{name: "traversal stays inside the root", target: "/../../../../etc/passwd", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, loc := rawRequestLoc(t, srv.URL, "GET "+tt.target+" HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
			if status != tt.status {
				t.Fatalf("status %d, want %d (%q)", status, tt.status, body)
			}
			if strings.Contains(body, "PWNED") {
				t.Fatal("an upload was executed as PHP")
			}
			if tt.body != "" && !strings.Contains(body, tt.body) {
				t.Errorf("body %q, want it to contain %q", body, tt.body)
			}
			if tt.location != "" && loc != tt.location {
				t.Errorf("Location %q, want %q", loc, tt.location)
			}
		})
	}
	// php-fpm is unharmed by the hostile requests.
	if resp, body := get(t, srv.URL+"/hello.php"); resp.StatusCode != 200 || body != "Hello, World!" {
		t.Fatalf("after the hostile requests: %d %q", resp.StatusCode, body)
	}
}

func TestPrefixRoute(t *testing.T) {
	addr := peertest.PHPFPM(t, "")
	srv, _, _ := serve(t, Options{Address: addr, Route: "/app/"}, nil)
	resp, body := get(t, srv.URL+"/app/env.php/more")
	env := parseEnv(body)
	if resp.StatusCode != 200 || env["SCRIPT_NAME"] != "/app/env.php" || env["PATH_INFO"] != "/more" ||
		env["SCRIPT_FILENAME"] != wwwRoot(t)+"/env.php" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, srv.URL+"/app/dir"); resp.StatusCode != 301 || resp.Header.Get("Location") != "/app/dir/" {
		t.Fatalf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := get(t, srv.URL+"/app/dir/"); body != "dir index /app/dir/index.php" {
		t.Fatalf("index: %q", body)
	}
}

func TestResponses(t *testing.T) {
	addr := peertest.PHPFPM(t, "")
	srv, _, logs := serve(t, Options{Address: addr, Route: "*.php"}, nil)

	t.Run("status and repeated headers", func(t *testing.T) {
		resp, body := get(t, srv.URL+"/status.php")
		if resp.StatusCode != 418 || body != "teapot" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		if got := resp.Header.Values("X-Multi"); len(got) != 2 {
			t.Errorf("X-Multi %q", got)
		}
		if got := resp.Header.Values("Set-Cookie"); len(got) != 2 {
			t.Errorf("Set-Cookie %q", got)
		}
	})
	t.Run("location means 302", func(t *testing.T) {
		resp, _ := get(t, srv.URL+"/redirect.php")
		if resp.StatusCode != 302 || resp.Header.Get("Location") != "/elsewhere" {
			t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("invalid header is 502", func(t *testing.T) {
		resp, body := get(t, srv.URL+"/badheader.php")
		if resp.StatusCode != 502 || strings.Contains(body, "should not be seen") || resp.Header.Get("Bad Name") != "" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		if !strings.Contains(logs.String(), `invalid response header: header field name \"Bad Name\" is not a token`) {
			t.Errorf("no log line naming the cause:\n%s", logs)
		}
	})
	// The header block as internal/cgiresp judges it, from a real php-fpm.
	headerCases := []struct {
		name, query string
		status      int
		header      http.Header // "" values: must be absent
		log         string
	}{
		{name: "tab after the status code", query: "case=tab", status: 404},
		{name: "empty Location is a redirect", query: "case=emptyloc", status: 302, header: http.Header{"Location": {""}}},
		{name: "two Locations are 502", query: "case=twoloc", status: 502, log: "more than one Location field"},
		{name: "hop-by-hop fields dropped", query: "case=hop", status: 200,
			header: http.Header{"Proxy-Authenticate": nil, "Proxy-Connection": nil, "Keep-Alive": nil}},
		{name: "header over several records", query: "case=size&n=20000", status: 200,
			header: http.Header{"X-H0": {strings.Repeat("v", 100)}, "X-H181": {strings.Repeat("v", 100)}}},
		{name: "header over the limit is 502", query: "case=size&n=40000", status: 502, log: "response header longer than 32768 bytes"},
	}
	for _, tc := range headerCases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv.URL+"/headers.php?"+tc.query)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (body %.100q)", resp.StatusCode, tc.status, body)
			}
			if tc.status < 500 && body != "page" {
				t.Errorf("body %.100q", body)
			}
			if tc.status >= 500 && strings.Contains(body, "page") {
				t.Errorf("body of a refused response passed: %.100q", body)
			}
			for k, v := range tc.header {
				got, ok := resp.Header[k]
				if v == nil && ok {
					t.Errorf("%s passed: %q", k, got)
				}
				if v != nil && (!ok || strings.Join(got, "|") != strings.Join(v, "|")) {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tc.log != "" && !strings.Contains(logs.String(), tc.log) {
				t.Errorf("no log line with %q:\n%s", tc.log, logs)
			}
		})
	}
	t.Run("large response spans many records", func(t *testing.T) {
		resp, body := get(t, srv.URL+"/big.php")
		want := strings.Repeat(strings.Repeat("0123456789abcdef", 4096), 32)
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("%d, %d bytes, want %d", resp.StatusCode, len(body), len(want))
		}
	})
	t.Run("stderr goes to the log", func(t *testing.T) {
		resp, body := get(t, srv.URL+"/stderr.php")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		peertest.WaitFor(t, 0, "the stderr line in the log", func() bool {
			return strings.Contains(logs.String(), "marker-from-stderr-php")
		})
	})
	t.Run("HEAD has no body", func(t *testing.T) {
		resp, err := http.Head(srv.URL + "/hello.php")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(b) != 0 {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
	})
}

func TestStreamsResponse(t *testing.T) {
	addr := peertest.PHPFPM(t, "")
	srv, _, _ := serve(t, Options{Address: addr, Route: "*.php"}, nil)
	marker := filepath.Join(t.TempDir(), "go")
	resp, err := http.Get(srv.URL + "/stream.php?wait=" + marker)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	// The script sends "second" only once the marker exists, and the marker is only
	// created after "first" arrived: so "first" was streamed, not buffered.
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "second\n" {
		t.Fatalf("rest %q", rest)
	}
}

// TestRequestBodies sends bodies as the server hands them on: spooled (see
// internal/spool) or, with request_buffering = false (?stream), as they arrive.
func TestRequestBodies(t *testing.T) {
	addr := peertest.PHPFPM(t, "")
	const limit = 2 << 20
	srv, _, _ := serve(t, Options{Address: addr, Route: "*.php"},
		spooltest.Wrap(t, limit, func(r *http.Request) bool { return r.URL.Query().Has("stream") }))
	tests := []struct {
		name    string
		size    int
		chunked bool
		stream  bool
		status  int
	}{
		{"small body in memory", 1000, false, false, 200},
		{"empty POST", 0, false, false, 200},
		{"large body spooled", 1 << 20, false, false, 200},
		{"large body streamed", 1 << 20, false, true, 200},
		{"small body streamed", 1000, false, true, 200},
		{"small chunked body gets a CONTENT_LENGTH", 3000, true, false, 200},
		{"large chunked body spooled", 300 << 10, true, false, 200},
		{"chunked body not spooled: 411, never an empty body", 3000, true, true, 411},
		{"over max_body streamed", 3 << 20, false, true, 413},
		{"over max_body chunked", 3 << 20, true, false, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := make([]byte, tt.size)
			for i := range body {
				body[i] = byte(i * 7)
			}
			var r io.Reader = strings.NewReader(string(body))
			if tt.chunked {
				r = struct{ io.Reader }{r} // hides the length: sent chunked
			}
			url := srv.URL + "/echo.php"
			if tt.stream {
				url += "?stream"
			}
			req, _ := http.NewRequest("POST", url, r)
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if tt.status != 200 {
				return
			}
			sum := sha256.Sum256(body)
			env := parseEnv(string(b))
			if env["len"] != strconv.Itoa(tt.size) || env["sha256"] != hex.EncodeToString(sum[:]) || env["content_length"] != strconv.Itoa(tt.size) {
				t.Fatalf("PHP saw %q", b)
			}
		})
	}
}

func TestPoolKeepsConnections(t *testing.T) {
	addr := peertest.PHPFPM(t, "")
	proxy := newCountingProxy(t, addr)
	srv, _, _ := serve(t, Options{Address: proxy.addr, Route: "*.php"}, nil)
	for i := 0; i < 20; i++ {
		if resp, _ := get(t, srv.URL+"/hello.php"); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	// One connection for FCGI_GET_VALUES at start, one reused for every request.
	if n := proxy.conns.Load(); n != 2 {
		t.Fatalf("%d connections for 20 sequential requests, want 2 (1 GET_VALUES + 1 kept)", n)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(srv.URL + "/hello.php")
			if err != nil {
				errs <- err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- errors.New(resp.Status)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Never more than MaxConns (default 2) open at once, and they were kept.
	if n := proxy.conns.Load(); n > 3 {
		t.Fatalf("%d connections in all, want at most 3: the pool is not bounded", n)
	}
}

func TestDiscoverMaxConns(t *testing.T) {
	// php-fpm answers FCGI_GET_VALUES with FCGI_MPXS_CONNS only, so gantry falls back
	// to a bound that fits even a 2-worker pool.
	addr := peertest.PHPFPM(t, "")
	network, a, _ := parseAddress(addr)
	if n := discoverMaxConns(network, a, time.Second, slog.New(slog.DiscardHandler)); n != defaultMaxConns || n > 2 {
		t.Fatalf("max conns = %d, want %d", n, defaultMaxConns)
	}
}

func TestStaleConnectionsAfterWorkerRecycle(t *testing.T) {
	// pm.max_requests = 2: php-fpm's workers exit, closing gantry's kept
	// connections, every other request.
	addr := peertest.PHPFPM(t, "pm.max_requests = 2")
	srv, _, _ := serve(t, Options{Address: addr, Route: "*.php"}, nil)
	for i := 0; i < 12; i++ {
		if resp, body := get(t, srv.URL+"/hello.php"); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
}

func TestBackendFailures(t *testing.T) {
	addr := peertest.PHPFPM(t, "")
	srv, _, logs := serve(t, Options{Address: addr, Route: "*.php", Timeout: config.Duration(300 * time.Millisecond)}, nil)

	t.Run("read timeout is 504", func(t *testing.T) {
		resp, _ := get(t, srv.URL+"/slow.php")
		if resp.StatusCode != 504 {
			t.Fatalf("status %d, want 504", resp.StatusCode)
		}
	})
	t.Run("death before any byte is 502", func(t *testing.T) {
		resp, _ := get(t, srv.URL+"/die_early.php")
		if resp.StatusCode != 502 {
			t.Fatalf("status %d, want 502", resp.StatusCode)
		}
	})
	t.Run("death mid-response cuts the response", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/die_late.php")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatalf("a cut response looked complete: %d %q\n%s", resp.StatusCode, b, logs)
		}
		if !strings.Contains(logs.String(), "fastcgi response cut short") {
			t.Errorf("no log line:\n%s", logs)
		}
	})
	t.Run("pool recovers", func(t *testing.T) {
		// php-fpm's master replaces the killed workers; the dead connections left
		// the pool, so this works without a 502.
		peertest.WaitFor(t, 0, "hello.php to answer", func() bool {
			resp, err := http.Get(srv.URL + "/hello.php")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
		for i := 0; i < 5; i++ {
			if resp, _ := get(t, srv.URL+"/hello.php"); resp.StatusCode != 200 {
				t.Fatalf("request %d: %d", i, resp.StatusCode)
			}
		}
	})
}

func TestUnreachableBackend(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "nobody.sock")
	srv, _, logs := serve(t, Options{Address: "unix:" + sock, Route: "*.php"}, nil)
	resp, _ := get(t, srv.URL+"/hello.php")
	if resp.StatusCode != 502 {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if !strings.Contains(logs.String(), "dial unix:"+sock) {
		t.Errorf("log does not name the socket:\n%s", logs)
	}
}

func TestClientDisconnectAborts(t *testing.T) {
	addr := peertest.PHPFPM(t, "")
	srv, _, logs := serve(t, Options{Address: addr, Route: "*.php"}, nil)
	marker := filepath.Join(t.TempDir(), "never")
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /stream.php?wait="+marker+" HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if line != "first\n" {
		t.Fatalf("first line %q", line)
	}
	c.Close() // the client goes away mid-response, long before the script ends
	peertest.WaitFor(t, 0, "the abort to be logged", func() bool {
		return strings.Contains(logs.String(), "client went away")
	})
}
