package cli

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gantry/internal/peertest"
	"gantry/internal/static"
	"gantry/internal/wsgi"
)

// TestServeDjangoStartproject serves a fresh `django-admin startproject` with no
// config: the admin's CSS comes from Django's own files, through gantry, both as
// runserver finds them and, once collectstatic ran, from STATIC_ROOT.
func TestServeDjangoStartproject(t *testing.T) {
	python := peertest.Python(t, "django")
	out, err := exec.Command(python, "-c", "import django, os; print(os.path.dirname(django.__file__))").Output()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "contrib", "admin", "static", "admin", "css", "base.css"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		collect bool
		log     string // what gantry says serves /static/
	}{
		{"static files finders, as runserver", false, "served from the static files finders' directories"},
		{"collectstatic output", true, "served from STATIC_ROOT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "mysite")
			os.Mkdir(dir, 0o755)
			runIn(t, dir, python, "-m", "django", "startproject", "mysite", ".")
			staticDir := "contrib/admin/static"
			if tc.collect {
				f, err := os.OpenFile(filepath.Join(dir, "mysite", "settings.py"), os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString("\nSTATIC_ROOT = BASE_DIR / \"collected\"\n")
				f.Close()
				runIn(t, dir, python, "manage.py", "collectstatic", "--noinput")
				staticDir = filepath.Join(dir, "collected")
			}
			p := startGantry(t, "serve", dir, "--python", python, "--listen", peertest.FreeAddr(t), "--admin", "off", "--access-log", "off")
			if l := p.log(); !strings.Contains(l, "django: /static/ "+tc.log) || !strings.Contains(l, staticDir) {
				t.Errorf("gantry does not say /static/ is %s (%s):\n%s", tc.log, staticDir, l)
			}
			resp, body := httpGet(t, "http://"+p.addr+"/static/admin/css/base.css")
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !bytes.Equal(body, want) {
				t.Errorf("base.css: %d %q, %d bytes, want 200 text/css with Django's %d bytes\n%s",
					resp.StatusCode, resp.Header.Get("Content-Type"), len(body), len(want), p.log())
			}
			resp, body = httpGet(t, "http://"+p.addr+"/admin/login/")
			if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`href="/static/admin/css/base.css"`)) {
				t.Errorf("/admin/login/: %d, does not link /static/admin/css/base.css:\n%.2000s\n%s", resp.StatusCode, body, p.log())
			}
			resp, _ = httpGet(t, "http://"+p.addr+"/static/admin/css/no-such.css")
			if resp.StatusCode != 404 {
				t.Errorf("a missing static file: %d, want 404", resp.StatusCode)
			}
		})
	}
}

func runIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func httpGet(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestDjangoStaticRoutes(t *testing.T) {
	d := t.TempDir()
	a, b, c, collected := filepath.Join(d, "a"), filepath.Join(d, "b"), filepath.Join(d, "c"), filepath.Join(d, "collected")
	for _, x := range []string{a, b, c, collected} {
		os.Mkdir(x, 0o755)
	}
	missing := filepath.Join(d, "missing")
	type route struct{ path, root, also string }
	tests := []struct {
		name   string
		sf     wsgi.DjangoStaticFiles
		routes []route
		note   string
	}{
		{"collectstatic output wins", wsgi.DjangoStaticFiles{URL: "/static/", Root: collected, Finders: []wsgi.FinderDir{{Dir: a}}},
			[]route{{"/static/", collected, ""}}, "STATIC_ROOT"},
		{"finders in order, one tree", wsgi.DjangoStaticFiles{URL: "/static/", Finders: []wsgi.FinderDir{{Dir: a}, {Dir: missing}, {Dir: b}}},
			[]route{{"/static/", a, b}}, "no STATIC_ROOT set"},
		{"STATIC_ROOT not collected yet", wsgi.DjangoStaticFiles{URL: "/assets", Root: missing, Finders: []wsgi.FinderDir{{Dir: a}}},
			[]route{{"/assets/", a, ""}}, "run collectstatic"},
		{"a STATICFILES_DIRS prefix", wsgi.DjangoStaticFiles{URL: "/static/", Finders: []wsgi.FinderDir{{Prefix: "vendor", Dir: c}, {Dir: a}, {Prefix: "vendor/", Dir: b}}},
			[]route{{"/static/vendor/", c, b}, {"/static/", a, ""}}, "finders"},
		{"a prefix climbing out is not served", wsgi.DjangoStaticFiles{URL: "/static/", Finders: []wsgi.FinderDir{{Prefix: "../x", Dir: c}, {Dir: a}}},
			[]route{{"/static/", a, ""}}, "unusable prefix"},
		{"STATIC_URL on another host", wsgi.DjangoStaticFiles{URL: "https://cdn.example/static/", Finders: []wsgi.FinderDir{{Dir: a}}},
			nil, "not a path on this site"},
		{"nothing to serve", wsgi.DjangoStaticFiles{URL: "/static/"}, nil, "no static files"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			routes, notes := djangoStaticRoutes(tc.sf)
			var got []route
			for _, r := range routes {
				o := r.Handler.(*static.Options)
				got = append(got, route{r.Path, o.Root, strings.Join(o.Also, ",")})
			}
			if !slices.Equal(got, tc.routes) {
				t.Errorf("routes %+v, want %+v", got, tc.routes)
			}
			var msgs []string
			for _, n := range notes {
				msgs = append(msgs, n.msg)
			}
			if !strings.Contains(strings.Join(msgs, "\n"), tc.note) {
				t.Errorf("notes %q do not say %q", msgs, tc.note)
			}
		})
	}
}
