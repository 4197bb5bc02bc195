package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gantry/internal/peertest"
)

// gatewaySite is a server with one route of every kind, each backed by a real
// peer that reports what it got: a static root, a CGI script and a PHP script
// dumping their environment, a WSGI app dumping its environ, a proxy upstream
// echoing its request line and headers, and a redirect.
type gatewaySite struct {
	srv  *Server
	addr string
	file string
	conf func(fastPath bool) string
	port string // the server's port, as SERVER_PORT must read
}

func startGatewaySite(t *testing.T) *gatewaySite {
	t.Helper()
	phpCGI := peertest.Binary(t, "php-cgi", "php-cgi8.2")
	py := peertest.Python(t)
	root, cgiDir, appDir := t.TempDir(), t.TempDir(), t.TempDir()
	copyTestdata := func(name, dir string, mode os.FileMode) {
		b, err := os.ReadFile(filepath.Join("testdata", "env", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, mode); err != nil {
			t.Fatal(err)
		}
	}
	copyTestdata("env.php", root, 0o644)
	copyTestdata("env.sh", cgiDir, 0o755)
	copyTestdata("env_app.py", appDir, 0o644)
	writeFile(t, filepath.Join(root, "a.txt"), "root a")
	writeFile(t, filepath.Join(root, "static", "s.txt"), "static s")

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var names []string
		for k := range r.Header {
			names = append(names, k)
		}
		sort.Strings(names)
		fmt.Fprintf(w, "request %s %s\n", r.Method, r.RequestURI)
		for _, k := range names {
			fmt.Fprintf(w, "%s: %s\n", k, strings.Join(r.Header[k], ", "))
		}
	}))
	t.Cleanup(up.Close)

	g := &gatewaySite{}
	g.conf = func(fastPath bool) string {
		return fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\nfast_path=%v\n[admin]\nlisten=\"off\"\n"+
			"[[site]]\nroot=%q\n"+
			"  [[site.route]]\n  path=\"/static/\"\n  static=%q\n"+
			"  [[site.route]]\n  path=\"/cgi-bin/\"\n  cgi=%q\n"+
			"  [[site.route]]\n  path=\"*.php\"\n  fastcgi_command=[%q]\n  processes=1\n"+
			"  [[site.route]]\n  path=\"/app/\"\n  wsgi=\"env_app:application\"\n  python=%q\n  chdir=%q\n  processes=1\n"+
			"  [[site.route]]\n  path=\"/proxy/\"\n  proxy=%q\n"+
			"  [[site.route]]\n  path=\"/go/\"\n  redirect=\"https://example.com{uri}\"\n  status=301\n",
			fastPath, root, filepath.Join(root, "static"), cgiDir, phpCGI, py, appDir, up.URL)
	}
	var base string
	g.srv, base, g.file = startServer(t, g.conf(true))
	g.addr = strings.TrimPrefix(base, "http://")
	g.port = g.addr[strings.LastIndexByte(g.addr, ':')+1:]
	return g
}

// setFast switches the fast path by a reload, keeping the running workers.
func (g *gatewaySite) setFast(t *testing.T, on bool) {
	t.Helper()
	writeFile(t, g.file, g.conf(on))
	if err := g.srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// do sends one raw request (which must close the connection) and returns the
// response, its body read.
func (g *gatewaySite) do(t *testing.T, raw string) (*http.Response, string) {
	t.Helper()
	res, body, _ := g.doRaw(t, raw)
	return res, body
}

// doRaw is do that also returns the response's bytes as sent.
func (g *gatewaySite) doRaw(t *testing.T, raw string) (*http.Response, string, string) {
	t.Helper()
	out := exchange(t, g.addr, raw, false)
	method, _, _ := strings.Cut(raw, " ")
	res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%q: reading the response %q: %v", raw, out, err)
	}
	body, _ := io.ReadAll(res.Body)
	return res, string(body), out
}

// Header names PHP or a CGI library could map onto "X-Auth-User" ("." and "_"
// become "_" in PHP's $_SERVER keys) must never reach a backend, whichever
// path (fast or net/http) the request takes: otherwise a client overrides the
// value a trusted proxy in front set, one time in six for PHP.
func TestHeaderNamesThatMapOntoOthersNeverReachBackends(t *testing.T) {
	g := startGatewaySite(t)
	const headers = "X-Auth-User: alice\r\nX-Auth.User: admin-dot\r\nX_Auth_User: admin-underscore\r\n" +
		"X-Auth~User: admin-tilde\r\nX-Auth-User.: admin-trailing\r\n"
	gateways := []struct{ name, path, want string }{
		{"php", "/env.php", "HTTP_X_AUTH_USER=alice\n"},
		{"wsgi", "/app/", "HTTP_X_AUTH_USER=alice\n"},
		{"cgi", "/cgi-bin/env.sh", "HTTP_X_AUTH_USER=alice\n"},
		{"proxy", "/proxy/", "X-Auth-User: alice\n"},
	}
	for _, gw := range gateways {
		for _, method := range []string{"GET", "POST"} {
			t.Run(gw.name+" "+method, func(t *testing.T) {
				for range 6 { // PHP's order of same-named keys varied per request
					raw := method + " " + gw.path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers
					if method == "POST" {
						raw += "Content-Length: 1\r\n\r\nx"
					} else {
						raw += "\r\n"
					}
					res, body := g.do(t, raw)
					if res.StatusCode != 200 || !strings.Contains(body, gw.want) || strings.Contains(body, "admin") {
						t.Fatalf("%s %s: %s; the backend saw:\n%s\nwant %q and no admin", method, gw.path, res.Status, body, gw.want)
					}
				}
			})
		}
	}
}

// hostilePaths are request targets that try to reach outside the route they
// name, or to reach a backend unnormalised; each must be normalised before
// route matching (or refused with 400), and the backend must see the
// normalised path.
func TestHostilePathsNormalisedBeforeRouting(t *testing.T) {
	g := startGatewaySite(t)
	tests := []struct {
		name, target string
		status       int
		want         []string // in the body: what the backend saw
		location     string
	}{
		// static
		{"static: dot-dot leaves the route", "/static/../a.txt", 200, []string{"root a"}, ""},
		{"static: dot-dot with a parameter", "/static/x/..;/s.txt", 200, []string{"static s"}, ""},
		{"static: escaped unreserved", "/static/%73.txt", 200, []string{"static s"}, ""},
		{"static: merged slashes", "/static//s.txt", 200, []string{"static s"}, ""},
		{"static: escaped dots above the root", "/static/%2e%2e/%2e%2e/etc/passwd", 400, nil, ""},
		{"static: escaped dots and slashes above the root", "/static/..%2f..%2f..%2fetc/passwd", 400, nil, ""},
		{"above the root", "/../a.txt", 400, nil, ""},
		// cgi
		{"cgi: dot segments around the script", "/x/../cgi-bin/./env.sh/a/../b", 200,
			[]string{"SCRIPT_NAME=/cgi-bin/env.sh\n", "PATH_INFO=/b\n", "REQUEST_URI=/x/../cgi-bin/./env.sh/a/../b\n"}, ""},
		{"cgi: escaped dots in path info", "/cgi-bin/env.sh/a/%2e%2e/%2e%2e/b", 404, nil, ""},
		{"cgi: merged slashes in path info", "/cgi-bin//env.sh//a//b", 200,
			[]string{"SCRIPT_NAME=/cgi-bin/env.sh\n", "PATH_INFO=/a/b\n"}, ""},
		{"cgi: escaped traversal out of the script dir", "/cgi-bin/..%2f..%2f..%2fbin/sh", 400, nil, ""},
		// fastcgi
		{"php: dot segments before the script", "/static/%2e%2e/env.php/a/./b", 200,
			[]string{"SCRIPT_NAME=/env.php\n", "PATH_INFO=/a/b\n", "REQUEST_URI=/static/%2e%2e/env.php/a/./b\n"}, ""},
		{"php: dot-dot parameter ends the script", "/env.php/..;/a.txt", 200, []string{"root a"}, ""},
		{"php: escaped letters", "/%65nv.php", 200, []string{"SCRIPT_NAME=/env.php\n"}, ""},
		// wsgi
		{"wsgi: dot-dot leaves the app", "/app/../a.txt", 200, []string{"root a"}, ""},
		{"wsgi: dot segments inside the app", "/app/x/../y/./z?q=%2e%2e", 200,
			[]string{"SCRIPT_NAME=/app\n", "PATH_INFO=/y/z\n", "QUERY_STRING=q=%2e%2e\n", "REQUEST_URI=/app/x/../y/./z?q=%2e%2e\n"}, ""},
		{"wsgi: escaped dots back into the app", "/app/%2e%2e/app/z", 200, []string{"SCRIPT_NAME=/app\n", "PATH_INFO=/z\n"}, ""},
		{"wsgi: merged slashes", "/app//x//", 200, []string{"SCRIPT_NAME=/app\n", "PATH_INFO=/x/\n"}, ""},
		// proxy
		{"proxy: dot-dot leaves the route", "/proxy/../a.txt", 200, []string{"root a"}, ""},
		{"proxy: upstream gets the normalised path", "/proxy/x/../y/./z?q=1", 200, []string{"request GET /proxy/y/z?q=1\n"}, ""},
		{"proxy: escaped slash kept as sent", "/proxy/a%2Fb/c", 200, []string{"request GET /proxy/a%2Fb/c\n"}, ""},
		{"proxy: escaped unreserved decoded", "/proxy/%7Euser/%41", 200, []string{"request GET /proxy/~user/A\n"}, ""},
		{"proxy: dot-dot with a parameter", "/proxy/a/..;/b", 200, []string{"request GET /proxy/b\n"}, ""},
		{"proxy: merged slashes", "/proxy//a//b", 200, []string{"request GET /proxy/a/b\n"}, ""},
		// redirect
		{"redirect: the target gets the normalised path", "/go/x/../y", 301, nil, "https://example.com/go/y"},
		{"redirect: dot-dot leaves the route", "/go/../a.txt", 200, []string{"root a"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, body := g.do(t, "GET "+tc.target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if res.StatusCode != tc.status {
				t.Fatalf("GET %s: %s, want %d; body:\n%s", tc.target, res.Status, tc.status, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s: the backend saw\n%s\nwant %q in it", tc.target, body, w)
				}
			}
			if got := res.Header.Get("Location"); got != tc.location {
				t.Errorf("GET %s: Location %q, want %q", tc.target, got, tc.location)
			}
		})
	}
}

// The fast path must hand PHP and WSGI exactly the environment net/http does:
// the whole response (the app's dump of its environment, less REMOTE_PORT and
// request times) must be the same bytes either way, Date aside.
func TestFastPathGatewayEnvironmentSameAsNetHTTP(t *testing.T) {
	g := startGatewaySite(t)
	type env struct {
		name, raw string
	}
	var cases []env
	for _, p := range []string{"/env.php", "/app"} {
		cases = append(cases,
			env{p + " http/1.1", "GET " + p + "/x HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"},
			env{p + " http/1.0 without host", "GET " + p + "/x HTTP/1.0\r\n\r\n"},
			env{p + " http/1.0 with host and port", "GET " + p + "/x HTTP/1.0\r\nHost: Example.COM:8080\r\n\r\n"},
			env{p + " ipv6 host", "GET " + p + "/x HTTP/1.1\r\nHost: [::1]:" + g.port + "\r\nConnection: close\r\n\r\n"},
			env{p + " query string", "GET " + p + "/a/b?x=1&y=%20&z=&w HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
			env{p + " empty query", "GET " + p + "/x? HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
			env{p + " odd but valid headers", "GET " + p + "/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
				"x-lower-case: v\r\nX-Padded: \t padded \t\r\nX-Empty:\r\nX-Obs-Text: caf\xe9\r\n" +
				"Accept-Language: en;q=0.5, fr\r\nCookie: a=1; b=2\r\nUser-Agent: t/1 (x; y)\r\n" +
				"Authorization: Basic dTpw\r\nProxy: http://evil\r\nX-Dotted.Name: no\r\nX_Under: no\r\nContent-Length: 0\r\n\r\n"},
			env{p + " head", "HEAD " + p + "/x?h=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
		)
	}
	run := func(fast bool) (out []string, sums []string) {
		g.setFast(t, fast)
		for _, tc := range cases {
			before := g.srv.fastHits.Load()
			res, body, raw := g.doRaw(t, tc.raw)
			want := uint64(0)
			if fast {
				want = 1
			}
			if n := g.srv.fastHits.Load() - before; n != want {
				t.Errorf("%s: %d answers on the fast path with fast_path=%v, want %d", tc.name, n, fast, want)
			}
			if res.StatusCode != 200 || (res.Request.Method == "GET" && !strings.Contains(body, "SERVER_ADDR=127.0.0.1\nSERVER_NAME=")) ||
				(res.Request.Method == "GET" && !strings.Contains(body, "SERVER_PORT="+g.port+"\n")) {
				t.Errorf("%s with fast_path=%v: %s\n%s\nwant SERVER_ADDR and SERVER_PORT %s", tc.name, fast, res.Status, body, g.port)
			}
			out = append(out, dateLine.ReplaceAllString(raw, "Date: -\r"))
			sums = append(sums, res.Header.Get("X-Env-Sum"))
		}
		return out, sums
	}
	fast, fastSums := run(true)
	slow, slowSums := run(false)
	for i, tc := range cases {
		if fast[i] != slow[i] {
			t.Errorf("%s: fast path answered\n%s\nnet/http answered\n%s", tc.name, fast[i], slow[i])
		}
		if fastSums[i] == "" || fastSums[i] != slowSums[i] {
			t.Errorf("%s: environment sums %q (fast) and %q (net/http)", tc.name, fastSums[i], slowSums[i])
		}
	}
}
