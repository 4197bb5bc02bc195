package server

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

func fetch(t *testing.T, method, u, body string) (int, http.Header, string) {
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
					status, _, body := fetch(t, "GET", base+c.path, "")
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
				if status, h, _ := fetch(t, "GET", base+"/admin", ""); status != http.StatusMovedPermanently || !strings.HasSuffix(h.Get("Location"), "admin/") {
					t.Errorf("GET /admin = %d Location %q, want 301 /admin/", status, h.Get("Location"))
				}
				// A form POST through the front controller, then the redirect it answers.
				status, h, body := fetch(t, "POST", base+"/notes", url.Values{"text": {"buy milk"}}.Encode())
				if status != http.StatusSeeOther || h.Get("Location") != "/notes?added=1" {
					t.Fatalf("POST /notes = %d Location %q, want 303 /notes?added=1\n%s", status, h.Get("Location"), body)
				}
				status, _, body = fetch(t, "GET", base+h.Get("Location"), "")
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
			status, _, body := fetch(t, "GET", base+c.path, "")
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
				status, _, body := fetch(t, "GET", base+c.path, "")
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
