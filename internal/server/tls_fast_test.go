package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// tlsFastPair starts two HTTPS servers on the same site, one with the fast path
// and one with net/http only; the site has static files, a CGI route and a WSGI
// route that print what they were given.
func tlsFastPair(t *testing.T) (fast, slow *tlsSite) {
	t.Helper()
	py := peertest.Python(t)
	root, cgiDir, appDir := t.TempDir(), t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(root, "a.txt"), "file a\n")
	writeFile(t, filepath.Join(root, "big.bin"), strings.Repeat("0123456789abcdef", 100<<10/16))
	b, err := os.ReadFile(filepath.Join("testdata", "env", "env.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cgiDir, "env.sh"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	// The string-valued environ (the WSGI gateway's CGI variables), sorted, and
	// the body.
	writeFile(t, filepath.Join(appDir, "env_app.py"), `def application(environ, start_response):
    lines = ["%s=%s" % (k, v) for k, v in sorted(environ.items()) if isinstance(v, str) and k != "REMOTE_PORT"]
    lines.append("wsgi.url_scheme=" + environ["wsgi.url_scheme"])
    lines.append("body=" + environ["wsgi.input"].read().decode())
    out = ("\n".join(lines) + "\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]
`)
	site := fmt.Sprintf("[[site]]\nhosts=[\"localhost\", \"127.0.0.1\"]\nroot=%q\n"+
		"  [[site.route]]\n  path=\"/cgi-bin/\"\n  cgi=%q\n"+
		"  [[site.route]]\n  path=\"/app/\"\n  wsgi=\"env_app:application\"\n  python=%q\n  chdir=%q\n  processes=1\n", root, cgiDir, py, appDir)
	fast = startTLSServerServing(t, "fast_path=true\n", site, Options{})
	slow = startTLSServerServing(t, "fast_path=false\n", site, Options{})
	for _, ts := range []*tlsSite{fast, slow} {
		peertest.WaitFor(t, 20*time.Second, "the certificate for localhost", func() bool { return ts.srv.Certs().HasCert("localhost") })
	}
	return fast, slow
}

// tlsExchange sends raw on a new HTTPS/1.1 connection to ts and returns all that
// comes back until the server closes it, with ts's own port and the Date made
// comparable, and the same messages without their framing (see unframed).
func tlsExchange(t *testing.T, ts *tlsSite, raw string) (string, string) {
	t.Helper()
	conf := &tls.Config{ServerName: "localhost", RootCAs: rootPool(t, filepath.Join(ts.storage, "ca", "root.pem")), NextProtos: []string{"http/1.1"}}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ts.tls, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if p := c.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Fatalf("ALPN chose %q, want http/1.1", p)
	}
	go io.WriteString(c, raw)
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading answer: %v (got %q)", err, b)
	}
	comparable := func(s string) string {
		return dateLine.ReplaceAllString(strings.ReplaceAll(s, ts.tlsPort, "PORT"), "Date: -\r")
	}
	return comparable(string(b)), comparable(unframed(t, string(b)))
}

// unframed is a stream of HTTP/1.1 responses without their framing fields
// (Content-Length, Transfer-Encoding), bodies de-chunked.
func unframed(t *testing.T, raw string) string {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(raw))
	var b strings.Builder
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return b.String()
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("unreadable answer %q: %v", raw, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("unreadable body in %q: %v", raw, err)
		}
		resp.Header.Del("Content-Length")
		fmt.Fprintf(&b, "%s\r\n", resp.Status)
		resp.Header.Write(&b)
		fmt.Fprintf(&b, "\n%s\n", body)
	}
}

// TestTLSFastPathDifferential sends the same requests over HTTPS/1.1 to a server
// with the fast path and one without: the same bytes must come back, and the
// gateways must see the same environment (HTTPS, REQUEST_SCHEME, SERVER_PORT,
// wsgi.url_scheme) and body, on the fast path, on a connection handed to
// net/http at its first request, and on one handed over after a fast request.
func TestTLSFastPathDifferential(t *testing.T) {
	fast, slow := tlsFastPair(t)
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n" }
	post := func(path, body string) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
	}
	const closing = "GET /a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
	// The static cache answers a file's requests on the fast path from its
	// second one.
	for _, ts := range []*tlsSite{fast, slow} {
		tlsExchange(t, ts, get("/big.bin")+closing)
	}
	cases := []struct {
		name string
		raw  string
		fast int // requests answered on the fast path, the closing one included
		want []string
	}{
		{"static", get("/a.txt"), 2, []string{"file a\n", "Strict-Transport-Security: max-age=600\r\n", "Alt-Svc: h3=\":PORT\""}},
		{"large file, no sendfile under TLS", get("/big.bin"), 2, []string{"0123456789abcdef0123"}},
		{"wsgi on the fast path", get("/app/x"), 2, []string{"HTTPS=on\n", "SERVER_PORT=PORT\n", "wsgi.url_scheme=https\n"}},
		{"cgi, handed over at once", get("/cgi-bin/env.sh"), 0, []string{"HTTPS=on\n", "REQUEST_SCHEME=https\n", "SERVER_PORT=PORT\n"}},
		{"post after a fast get", get("/a.txt") + post("/app/x", "posted"), 1, []string{"wsgi.url_scheme=https\n", "HTTPS=on\n", "body=posted\n"}},
		{"cgi after a fast wsgi get", get("/app/x") + get("/cgi-bin/env.sh"), 1, []string{"REQUEST_SCHEME=https\n", "SERVER_PORT=PORT\n"}},
		{"range, from disk on the fast path", "GET /a.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-3\r\n\r\n", 2, []string{"206 Partial Content", "Strict-Transport-Security: max-age=600\r\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := fast.srv.fastHits.Load()
			got, gotMsgs := tlsExchange(t, fast, tc.raw+closing)
			served := int(fast.srv.fastHits.Load() - before)
			want, wantMsgs := tlsExchange(t, slow, tc.raw+closing)
			// A streamed CGI answer is chunked or sized depending on whether the
			// script's output arrived in one read: compare messages, not framing.
			if gotMsgs != wantMsgs {
				t.Errorf("fast path answered\n%.3000q\nnet/http answered\n%.3000q", got, want)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("answer lacks %q:\n%.3000q", w, got)
				}
			}
			if served != tc.fast {
				t.Errorf("%d requests answered on the fast path, want %d", served, tc.fast)
			}
		})
	}

	// Plain HTTP on the TLS port: the same answer from both.
	plain := func(ts *tlsSite) string {
		return exchange(t, ts.tls, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", false)
	}
	if got, want := plain(fast), plain(slow); got != want || !strings.Contains(got, "400 Bad Request") {
		t.Errorf("plain HTTP to the TLS port: fast path answered %q, net/http %q", got, want)
	}
}

// TestHTTP2CachedAnswer: over HTTP/2 a cached file is answered from the static
// cache directly, with the same status, headers and body as the handler chain
// gives (a server with the fast path off), for each kind of request the cache
// answers, and requests it does not answer still get the chain's answer.
func TestHTTP2CachedAnswer(t *testing.T) {
	fast, slow := tlsFastPair(t)
	type answer struct {
		status int
		header string
		body   string
	}
	do := func(ts *tlsSite, method, path string, hdr ...string) answer {
		t.Helper()
		req, _ := http.NewRequest(method, "https://localhost:"+ts.tlsPort+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := httpsClient(rootPool(t, filepath.Join(ts.storage, "ca", "root.pem")), true).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.ProtoMajor != 2 {
			t.Fatalf("%s %s over %s, want HTTP/2", method, path, resp.Proto)
		}
		resp.Header.Del("Date")
		var b strings.Builder
		resp.Header.Write(&b)
		return answer{resp.StatusCode, strings.ReplaceAll(b.String(), ts.tlsPort, "PORT"), string(body)}
	}
	for _, ts := range []*tlsSite{fast, slow} {
		do(ts, "GET", "/a.txt")
		do(ts, "GET", "/big.bin")
	}
	etag := do(fast, "GET", "/a.txt").header
	etag = etag[strings.Index(etag, "Etag: ")+6:]
	etag = etag[:strings.Index(etag, "\r\n")]
	cases := []struct {
		name   string
		method string
		path   string
		hdr    []string
		cached bool
	}{
		{"get", "GET", "/a.txt", nil, true},
		{"head", "HEAD", "/a.txt", nil, true},
		{"not modified", "GET", "/a.txt", []string{"If-None-Match", etag}, true},
		{"gzip accepted", "GET", "/big.bin", []string{"Accept-Encoding", "gzip"}, true},
		{"range is the chain's", "GET", "/a.txt", []string{"Range", "bytes=0-2"}, false},
		{"missing file", "GET", "/nothing.txt", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := fast.srv.fastHits.Load()
			got := do(fast, tc.method, tc.path, tc.hdr...)
			hits := fast.srv.fastHits.Load() - before
			want := do(slow, tc.method, tc.path, tc.hdr...)
			if got != want {
				t.Errorf("from the cache:\n%d %s%q\nthrough the handlers:\n%d %s%q", got.status, got.header, got.body, want.status, want.header, want.body)
			}
			if (hits == 1) != tc.cached {
				t.Errorf("%d answers from the cache, want cached=%v", hits, tc.cached)
			}
		})
	}
}
