package server

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// gatewayPair starts two servers on the same WSGI app, one with the fast path and
// one without.
func gatewayPair(t *testing.T) (fast *Server, fastAddr, slowAddr string) {
	t.Helper()
	py := peertest.Python(t)
	app, err := os.ReadFile(filepath.Join("testdata", "gateway_app.py"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "gateway_app.py"), string(app))
	conf := func(fastPath bool) string {
		return fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\nfast_path=%v\n[admin]\nlisten=\"off\"\n"+
			"[[site]]\nroot=%q\n  [[site.route]]\n  path=\"/\"\n  wsgi=\"gateway_app:application\"\n  python=%q\n  chdir=%q\n  processes=1\n",
			fastPath, dir, py, dir)
	}
	fast, fb, _ := startServer(t, conf(true))
	_, sb, _ := startServer(t, conf(false))
	return fast, strings.TrimPrefix(fb, "http://"), strings.TrimPrefix(sb, "http://")
}

// TestFastPathGatewayDifferential sends the same bytes to a WSGI route on a server
// with the fast path and on one without, and requires the same bytes back (Date
// aside), bodiless GET and HEAD requests answered on the fast path.
func TestFastPathGatewayDifferential(t *testing.T) {
	fast, fa, sa := gatewayPair(t)
	get := func(path string, hdrs ...string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + strings.Join(hdrs, "") + "\r\n"
	}
	const last = "GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	cases := []diffCase{
		{"declared length", get("/small"), 2},
		{"length computed", get("/nolength"), 2},
		{"content type sniffed", get("/untyped"), 2},
		{"streamed, chunked", get("/stream"), 2},
		{"no content", get("/empty"), 2},
		{"not found", get("/nothing"), 2},
		{"head", "HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n", 2},
		{"query and headers", get("/query?a=1&b=%20", "X-Test: yes\r\n"), 2},
		{"http/1.0 streamed closes", "GET /stream HTTP/1.0\r\n\r\n", 1},
		{"http/1.0 keep-alive", "GET /small HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 2},
		{"pipelined", get("/small") + get("/stream") + get("/nolength"), 4},
		{"file wrapper with length", get("/file?length"), 2},
		{"file wrapper chunked", get("/file"), 2},
		{"file wrapper head", "HEAD /file?length HTTP/1.1\r\nHost: x\r\n\r\n", 2},
		{"post goes to net/http", "POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", 0},
	}
	compareFast(t, fast, fa, sa, last, cases)
}

// TestFastPathGatewayCrash: a worker that dies mid-response ends the client's
// connection without a complete response, and the next connection is served.
func TestFastPathGatewayCrash(t *testing.T) {
	_, fa, _ := gatewayPair(t)
	c, err := net.Dial("tcp", fa)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "GET /crash HTTP/1.1\r\nHost: x\r\n\r\n")
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v after %q", err, got)
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 200 OK\r\n") || strings.HasSuffix(string(got), "0\r\n\r\n") {
		t.Errorf("answer %q: want a 200 head and a body cut short", got)
	}
	// The worker is replaced; the next request gets a whole answer.
	deadline := time.Now().Add(15 * time.Second)
	for {
		out := exchange(t, fa, "GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false)
		if strings.HasSuffix(out, "\r\n\r\nhello") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no whole answer after the crash: %q", out)
		}
	}
}

// TestFastPathFastCGIDifferential is TestFastPathGatewayDifferential for a PHP
// route served by supervised php-cgi processes.
func TestFastPathFastCGIDifferential(t *testing.T) {
	phpCGI := peertest.Binary(t, "php-cgi", "php-cgi8.2")
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "hello.php"), "<?php header('X-Php: 1'); echo 'hello ', $_SERVER['PATH_INFO'] ?? '-', ' ', $_GET['q'] ?? '-';")
	writeFile(t, filepath.Join(root, "big.php"), "<?php echo str_repeat('x', 5000); flush(); echo str_repeat('y', 3000);")
	writeFile(t, filepath.Join(root, "moved.php"), "<?php http_response_code(302); header('Location: /hello.php');")
	writeFile(t, filepath.Join(root, "dir", "index.php"), "<?php echo 'index';")
	conf := func(fastPath bool) string {
		return fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\nfast_path=%v\n[admin]\nlisten=\"off\"\n"+
			"[[site]]\nroot=%q\n  [[site.route]]\n  path=\"*.php\"\n  fastcgi_command=[%q]\n  processes=1\n",
			fastPath, root, phpCGI)
	}
	fast, fb, _ := startServer(t, conf(true))
	_, sb, _ := startServer(t, conf(false))
	fa, sa := strings.TrimPrefix(fb, "http://"), strings.TrimPrefix(sb, "http://")
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n" }
	const last = "GET /hello.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	cases := []diffCase{
		{"script", get("/hello.php?q=1"), 2},
		{"path info", get("/hello.php/extra"), 2},
		{"chunked after a flush", get("/big.php"), 2},
		{"redirect", get("/moved.php"), 2},
		{"missing script", get("/nothing.php"), 2},
		{"head", "HEAD /hello.php HTTP/1.1\r\nHost: x\r\n\r\n", 2},
		{"pipelined", get("/hello.php") + get("/big.php"), 3},
	}
	compareFast(t, fast, fa, sa, last, cases)
}

// diffCase is raw bytes for compareFast and how many of its requests the fast
// path must answer, the closing one included.
type diffCase struct {
	name string
	raw  string
	fast int
}

// compareFast sends each case's bytes, then last (which must close the
// connection), to the server with the fast path at fa and the one without at sa,
// and requires the same bytes back, Date aside.
func compareFast(t *testing.T, fast *Server, fa, sa, last string, cases []diffCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.raw + last
			before := fast.fastHits.Load()
			got := exchange(t, fa, raw, false)
			served := int(fast.fastHits.Load() - before)
			want := exchange(t, sa, raw, false)
			got, want = dateLine.ReplaceAllString(got, "Date: -\r"), dateLine.ReplaceAllString(want, "Date: -\r")
			if got != want {
				t.Errorf("fast path answered\n%.2000q\nnet/http answered\n%.2000q", got, want)
			}
			if served != tc.fast {
				t.Errorf("%d requests answered on the fast path, want %d", served, tc.fast)
			}
		})
	}
}
