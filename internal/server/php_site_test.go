package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// phpApp copies testdata/phpapp (a front-controller app) into a fresh directory,
// so that what it writes (notes.txt, beside the root) stays out of the tree.
func phpApp(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "www")
	if err := os.CopyFS(root, os.DirFS("testdata/phpapp")); err != nil {
		t.Fatal(err)
	}
	return root
}

// phpBackends are the two ways a PHP route runs: php-fpm, and php-cgi processes
// gantry spawns.
func phpBackends(t *testing.T) map[string]string {
	phpCGI := peertest.Binary(t, "php-cgi", "php-cgi8.2")
	return map[string]string{
		"php-fpm": fmt.Sprintf("fastcgi = %q", peertest.PHPFPM(t, "")),
		"php-cgi": fmt.Sprintf("fastcgi_command = [%q]\n  processes = 2", phpCGI),
	}
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func fetchNoRedirect(t *testing.T, method, u, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestPHPFrontController serves a front-controller app with nothing but a site
// root and a *.php route, as its users deploy it, on php-fpm and php-cgi with the
// fast path on and off: directory index, pretty URLs with their query strings,
// static assets beside the app, PHP never shown as source, and what PHP sees.
func TestPHPFrontController(t *testing.T) {
	for backend, handler := range phpBackends(t) {
		for _, fastPath := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/fast_path=%v", backend, fastPath), func(t *testing.T) {
				root := phpApp(t)
				_, base, _ := startServer(t, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\nfast_path=%v\n[admin]\nlisten=\"off\"\n"+
					"[[site]]\nroot=%q\n  [[site.route]]\n  path=\"*.php\"\n  %s\n", fastPath, root, handler))
				cases := []struct {
					name, path string
					status     int
					want       []string // lines the body must hold
					not        []string // text it must not hold
				}{
					{"root runs index.php", "/", 200, []string{"route=home", "SCRIPT_NAME=/index.php", "REQUEST_URI=/\n", "PATH_INFO=\n"}, nil},
					{"pretty URL goes to the front controller", "/blog/first-post", 200,
						[]string{"route=post slug=first-post", "SCRIPT_NAME=/index.php", "REQUEST_URI=/blog/first-post", "QUERY_STRING="}, nil},
					{"query string kept", "/blog/first-post?page=2&x=%20y", 200,
						[]string{"REQUEST_URI=/blog/first-post?page=2&x=%20y", "QUERY_STRING=page=2&x=%20y"}, nil},
					{"unknown route is the app's 404", "/no/such/page", 404, []string{"route=none", "REQUEST_URI=/no/such/page"}, nil},
					{"subdirectory index.php", "/admin/", 200, []string{"route=admin", "SCRIPT_NAME=/admin/index.php", "REQUEST_URI=/admin/"}, nil},
					{"subdirectory index.php with query", "/admin/?tab=users", 200, []string{"SCRIPT_NAME=/admin/index.php", "REQUEST_URI=/admin/?tab=users"}, nil},
					{"static asset", "/assets/site.css", 200, []string{"body { color: #333; }"}, []string{"route="}},
					{"upload served as a file", "/uploads/a.txt", 200, []string{"an uploaded file"}, nil},
					{"static directory index", "/docs/", 200, []string{"<p>static docs</p>"}, nil},
					{"script by its own path runs", "/lib/helper.php", 200, []string{"helper ran"}, []string{"<?php"}},
					{"index.php by its own path runs", "/index.php", 200, []string{"route=home", "SCRIPT_NAME=/index.php"}, []string{"<?php"}},
					{"directory without index is forbidden, as nginx", "/lib/", 403, nil, []string{"<?php", "helper"}},
					{"missing script is 404, not the front controller", "/missing.php", 404, nil, []string{"route="}},
				}
				for _, c := range cases {
					status, _, body := fetchNoRedirect(t, "GET", base+c.path, "")
					if status != c.status {
						t.Errorf("%s: GET %s = %d, want %d\n%s", c.name, c.path, status, c.status, body)
					}
					for _, w := range c.want {
						if !strings.Contains(body, w) {
							t.Errorf("%s: GET %s: body lacks %q:\n%s", c.name, c.path, w, body)
						}
					}
					for _, n := range c.not {
						if strings.Contains(body, n) {
							t.Errorf("%s: GET %s: body holds %q:\n%s", c.name, c.path, n, body)
						}
					}
				}
				// A directory without its slash is redirected to it, as today.
				if status, h, _ := fetchNoRedirect(t, "GET", base+"/admin", ""); status != http.StatusMovedPermanently || !strings.HasSuffix(h.Get("Location"), "admin/") {
					t.Errorf("GET /admin = %d Location %q, want 301 /admin/", status, h.Get("Location"))
				}
				// A form POST through the front controller, then the redirect it answers.
				status, h, body := fetchNoRedirect(t, "POST", base+"/notes", url.Values{"text": {"buy milk"}}.Encode())
				if status != http.StatusSeeOther || h.Get("Location") != "/notes?added=1" {
					t.Fatalf("POST /notes = %d Location %q, want 303 /notes?added=1\n%s", status, h.Get("Location"), body)
				}
				status, _, body = fetchNoRedirect(t, "GET", base+h.Get("Location"), "")
				if status != 200 || !strings.Contains(body, "route=notes\nbuy milk\n") || !strings.Contains(body, "REQUEST_METHOD=GET") {
					t.Errorf("GET /notes?added=1 after the POST = %d:\n%s", status, body)
				}
			})
		}
	}
}

// TestPHPFrontControllerMissing checks that a site whose try_files falls back to
// an index.php that does not exist answers 404 — once, not in a loop — and that
// try_files = [] turns the front controller off.
func TestPHPFrontControllerMissing(t *testing.T) {
	phpCGI := peertest.Binary(t, "php-cgi", "php-cgi8.2")
	for _, c := range []struct {
		name, tryFiles string
		remove         string
		path           string
		status         int
	}{
		{"no index.php", "", "index.php", "/blog/first-post", 404},
		{"no index.php, root", "", "index.php", "/", 403},
		{"try_files off: pretty URL", "try_files = []", "", "/blog/first-post", 404},
		{"try_files off: directory index.php still runs", "try_files = []", "", "/admin/", 200},
		{"own list: =404", `try_files = ["{path}", "{path}/", "=404"]`, "", "/blog/first-post", 404},
		{"own list: SPA fallback to a file", `try_files = ["{path}", "/docs/index.html"]`, "", "/anything/at/all", 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := phpApp(t)
			if c.remove != "" {
				os.Remove(filepath.Join(root, c.remove))
			}
			_, base, _ := startServer(t, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n"+
				"[[site]]\nroot=%q\n%s\n  [[site.route]]\n  path=\"*.php\"\n  fastcgi_command=[%q]\n  processes=1\n", root, c.tryFiles, phpCGI))
			status, _, body := fetchNoRedirect(t, "GET", base+c.path, "")
			if status != c.status {
				t.Errorf("GET %s = %d, want %d\n%s", c.path, status, c.status, body)
			}
			if strings.Contains(body, "<?php") {
				t.Errorf("GET %s showed PHP source:\n%s", c.path, body)
			}
		})
	}
}

// TestSymlinksPolicy serves a tree laid out as Debian packages web applications
// (links into shared directories outside the root) under each symlinks policy:
// the policy decides for static files and PHP scripts alike.
func TestSymlinksPolicy(t *testing.T) {
	if os.Geteuid() != 0 {
		peertest.Missing(t, "root", "the owner policy needs files of two owners (chown)")
	}
	phpCGI := peertest.Binary(t, "php-cgi", "php-cgi8.2")
	base := t.TempDir()
	root := filepath.Join(base, "usr/share/app")
	writeFile(t, filepath.Join(base, "usr/share/javascript/jquery/jquery.js"), "jquery()")
	writeFile(t, filepath.Join(base, "usr/share/php/app/main.php"), "<?php echo 'main ran from ', $_SERVER['SCRIPT_FILENAME'];")
	writeFile(t, filepath.Join(base, "etc/app/secret.txt"), "not for the web")
	writeFile(t, filepath.Join(root, "index.html"), "home")
	if err := os.Chown(filepath.Join(base, "etc/app/secret.txt"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"javascript": "../javascript",
		"main.php":   "../php/app/main.php",
		"secret.txt": "../../../etc/app/secret.txt",
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		path string
		want map[string]int
	}{
		{"/javascript/jquery/jquery.js", map[string]int{"inside": 404, "owner": 200, "follow": 200}},
		{"/main.php", map[string]int{"inside": 404, "owner": 200, "follow": 200}},
		{"/secret.txt", map[string]int{"inside": 404, "owner": 403, "follow": 200}},
		{"/index.html", map[string]int{"inside": 200, "owner": 200, "follow": 200}},
	}
	for _, mode := range []string{"inside", "owner", "follow"} {
		t.Run(mode, func(t *testing.T) {
			_, base, _ := startServer(t, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n"+
				"[[site]]\nroot=%q\nsymlinks=%q\ntry_files=[]\n  [[site.route]]\n  path=\"*.php\"\n  fastcgi_command=[%q]\n  processes=1\n", root, mode, phpCGI))
			for _, c := range cases {
				status, _, body := fetchNoRedirect(t, "GET", base+c.path, "")
				if status != c.want[mode] {
					t.Errorf("GET %s = %d, want %d\n%s", c.path, status, c.want[mode], body)
				}
				if c.path == "/main.php" && status == 200 && body != "main ran from "+filepath.Join(root, "main.php") {
					t.Errorf("GET /main.php: %q, want it to run with SCRIPT_FILENAME the link in the root", body)
				}
			}
		})
	}
}

// startNginx runs nginx with the try_files line PHP applications are deployed
// with, in front of the php-fpm at fpm, serving root; it returns its address.
func startNginx(t *testing.T, root, fpm string) string {
	t.Helper()
	bin := peertest.Binary(t, "nginx", "/usr/sbin/nginx")
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	temps := ""
	for _, k := range []string{"client_body", "fastcgi", "proxy", "uwsgi", "scgi"} {
		temps += fmt.Sprintf("  %s_temp_path %s/%s;\n", k, dir, k)
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
error_log %[1]s/error.log;
pid %[1]s/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
%[2]s  include /etc/nginx/mime.types;
  server {
    listen %[3]s;
    root %[4]s;
    index index.html index.php;
    location / { try_files $uri $uri/ /index.php?$args; }
    location ~ [^/]\.php(/|$) {
      # /etc/nginx/snippets/fastcgi-php.conf, Debian's, with absolute includes
      fastcgi_split_path_info ^(.+?\.php)(/.*)$;
      try_files $fastcgi_script_name =404;
      set $path_info $fastcgi_path_info;
      fastcgi_param PATH_INFO $path_info;
      fastcgi_index index.php;
      include /etc/nginx/fastcgi.conf;
      fastcgi_pass %[5]s;
    }
  }
}
`, dir, temps, addr, root, fpm)
	file := filepath.Join(dir, "nginx.conf")
	writeFile(t, file, conf)
	cmd := exec.Command(bin, "-c", file, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr peertest.LogBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	peertest.WaitFor(t, 10*time.Second, "nginx to accept connections", func() bool {
		select {
		case <-exited:
			t.Fatalf("nginx exited: %s", stderr.String())
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

// TestPHPFrontControllerMatchesNginx sends a table of URLs to gantry and to
// nginx with `try_files $uri $uri/ /index.php?$args` on the same php-fpm pool and
// requires the same status, and the same body — which for PHP is the environment
// the app saw — once each server's own address is written as ADDR.
func TestPHPFrontControllerMatchesNginx(t *testing.T) {
	root := phpApp(t)
	fpm := peertest.PHPFPM(t, "")
	nginx := startNginx(t, root, fpm)
	_, base, _ := startServer(t, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n"+
		"[[site]]\nroot=%q\n  [[site.route]]\n  path=\"*.php\"\n  fastcgi = %q\n", root, fpm))
	gantry := strings.TrimPrefix(base, "http://")
	type req struct{ method, target, body string }
	reqs := []req{
		{"GET", "/", ""}, {"HEAD", "/", ""}, {"GET", "/index.php", ""}, {"GET", "/?a=1&b=2", ""},
		{"GET", "/blog/first-post", ""}, {"GET", "/blog/first-post?page=2", ""}, {"GET", "/blog/first-post/", ""},
		{"GET", "/blog/UPPER", ""}, {"GET", "/blog/a%20b", ""}, {"GET", "/%62log/first-post", ""},
		{"GET", "/no/such/page", ""}, {"GET", "/no/such/page?a=b&c=%2F", ""}, {"GET", "/.hidden", ""},
		{"GET", "/admin/", ""}, {"GET", "/admin/?tab=users", ""}, {"GET", "/admin", ""}, {"GET", "/admin/index.php", ""},
		{"GET", "/assets/site.css", ""}, {"GET", "/assets/missing.css", ""}, {"GET", "/uploads/a.txt", ""},
		{"GET", "/uploads/", ""}, {"GET", "/docs/", ""}, {"GET", "/docs", ""}, {"GET", "/docs/index.html", ""},
		{"GET", "/lib/helper.php", ""}, {"GET", "/lib/", ""}, {"GET", "/missing.php", ""}, {"GET", "/lib/missing.php", ""},
		{"GET", "/index.php/extra/path", ""}, {"GET", "/index.php/extra/path?q=1", ""},
		{"POST", "/notes", "text=from+the+differential"}, {"GET", "/notes", ""},
	}
	send := func(addr string, r req) (int, string) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", r.method, r.target, addr)
		if r.body != "" {
			head += fmt.Sprintf("Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n", len(r.body))
		}
		io.WriteString(c, head+"\r\n"+r.body)
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: r.method})
		if err != nil {
			t.Fatalf("%s %s to %s: %v", r.method, r.target, addr, err)
		}
		b, _ := io.ReadAll(resp.Body)
		body := string(b)
		_, port, _ := net.SplitHostPort(addr)
		body = strings.ReplaceAll(body, addr, "ADDR")
		body = strings.ReplaceAll(body, "SERVER_PORT="+port, "SERVER_PORT=PORT")
		return resp.StatusCode, body
	}
	for _, r := range reqs {
		gs, gb := send(gantry, r)
		ns, nb := send(nginx, r)
		if gs != ns {
			t.Errorf("%s %s: gantry %d, nginx %d", r.method, r.target, gs, ns)
			continue
		}
		if gs >= 300 && gs < 400 || gs == 403 || gs == 404 && !strings.Contains(nb, "route=") {
			continue // the servers' own error and redirect pages differ in wording only
		}
		if gb != nb {
			t.Errorf("%s %s (%d): bodies differ\n--- gantry\n%s\n--- nginx\n%s", r.method, r.target, gs, gb, nb)
		}
	}
}
