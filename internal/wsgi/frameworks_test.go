package wsgi

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// copyDir copies a testdata tree so that tests can write to it (sqlite, static).
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if d.Name() == "__pycache__" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func run(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func newClient(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfInput = regexp.MustCompile(`name="csrfmiddlewaretoken" value="([^"]+)"`)

// TestDjango runs a real Django project mounted at /site/, through the PEP 3333
// validator: the admin login flow with
// CSRF and session cookies, a streaming response, a multipart upload, and the quick
// mode helpers (layout detection, STATIC_URL/STATIC_ROOT).
func TestDjango(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		python := peertest.Python(t, "django")
		dir := copyDir(t, "testdata/django")
		env := []string{"GANTRY_TEST_DB=" + filepath.Join(dir, "test.sqlite3"), "DJANGO_SUPERUSER_PASSWORD=s3cret-Passw0rd"}
		run(t, dir, env, python, "manage.py", "migrate", "--noinput")
		run(t, dir, env, python, "manage.py", "createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com")

		app, ok := DetectDjango(dir)
		if !ok || app != "mysite.wsgi:application" {
			t.Fatalf("DetectDjango = %q, %v", app, ok)
		}
		sf, err := DjangoStatic(context.Background(), python, dir)
		if err != nil || sf.URL != "/static/" || sf.Root != filepath.Join(dir, "collected-static") {
			t.Errorf("DjangoStatic = %+v, %v", sf, err)
		}
		if len(sf.Finders) == 0 || !strings.HasSuffix(sf.Finders[0].Dir, filepath.Join("contrib", "admin", "static")) {
			t.Errorf("DjangoStatic finders = %+v, want the admin app's static directory", sf.Finders)
		}

		s := startSite(t, Options{Mode: mode, App: "mysite.validated:application", Python: python, Chdir: dir, Route: "/site/",
			Env: map[string]string{"GANTRY_TEST_DB": filepath.Join(dir, "test.sqlite3")}}, nil)
		base := s.srv.URL
		c := newClient(t)

		t.Run("plain view sees the mount point", func(t *testing.T) {
			req, _ := http.NewRequest("GET", base+"/site/hello/", nil)
			resp, body := do(t, c, req)
			if resp.StatusCode != 200 || body != "Hello from Django at /site/hello/ (script /site)" {
				t.Errorf("%d %q", resp.StatusCode, body)
			}
		})

		t.Run("admin login with CSRF and session cookies", func(t *testing.T) {
			req, _ := http.NewRequest("GET", base+"/site/admin/", nil)
			resp, _ := do(t, c, req)
			if loc := resp.Header.Get("Location"); resp.StatusCode != 302 || loc != "/site/admin/login/?next=/site/admin/" {
				t.Fatalf("anonymous admin: %d Location %q", resp.StatusCode, loc)
			}
			req, _ = http.NewRequest("GET", base+"/site/admin/login/?next=/site/admin/", nil)
			resp, body := do(t, c, req)
			m := csrfInput.FindStringSubmatch(body)
			if resp.StatusCode != 200 || m == nil {
				t.Fatalf("login page: %d, csrf token found: %v", resp.StatusCode, m != nil)
			}
			form := url.Values{"username": {"admin"}, "password": {"s3cret-Passw0rd"}, "next": {"/site/admin/"}}

			// Without the token Django's CSRF protection refuses the POST.
			req, _ = http.NewRequest("POST", base+"/site/admin/login/", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if resp, _ := do(t, c, req); resp.StatusCode != 403 {
				t.Errorf("login without CSRF token: %d, want 403", resp.StatusCode)
			}

			form.Set("csrfmiddlewaretoken", m[1])
			req, _ = http.NewRequest("POST", base+"/site/admin/login/?next=/site/admin/", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, body = do(t, c, req)
			if resp.StatusCode != 302 || resp.Header.Get("Location") != "/site/admin/" {
				t.Fatalf("login POST: %d Location %q\n%.500s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			var session bool
			for _, ck := range resp.Cookies() {
				if ck.Name == "sessionid" && ck.HttpOnly {
					session = true
				}
			}
			if !session {
				t.Errorf("no HttpOnly sessionid cookie in %q", resp.Header.Values("Set-Cookie"))
			}
			req, _ = http.NewRequest("GET", base+"/site/admin/", nil)
			resp, body = do(t, c, req)
			if resp.StatusCode != 200 || !strings.Contains(body, "Site administration") {
				t.Errorf("admin index after login: %d %.300q", resp.StatusCode, body)
			}
			req, _ = http.NewRequest("GET", base+"/site/admin/auth/user/", nil)
			if resp, body := do(t, c, req); resp.StatusCode != 200 || !strings.Contains(body, "admin@example.com") {
				t.Errorf("user list: %d", resp.StatusCode)
			}
		})

		t.Run("streaming response", func(t *testing.T) {
			req, _ := http.NewRequest("GET", base+"/site/stream/", nil)
			if resp, body := do(t, c, req); resp.StatusCode != 200 || body != "chunk0\nchunk1\nchunk2\n" {
				t.Errorf("%d %q", resp.StatusCode, body)
			}
		})

		t.Run("multipart upload larger than the inline limit", func(t *testing.T) {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			mw.WriteField("note", "hi")
			fw, _ := mw.CreateFormFile("file", "data.bin")
			fw.Write(bytes.Repeat([]byte{0xfe}, 200<<10))
			mw.Close()
			req, _ := http.NewRequest("POST", base+"/site/upload/", &buf)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			if resp, body := do(t, c, req); resp.StatusCode != 200 || body != "data.bin 204800 hi" {
				t.Errorf("%d %q", resp.StatusCode, body)
			}
		})

		t.Run("unknown page is Django's 404", func(t *testing.T) {
			req, _ := http.NewRequest("GET", base+"/site/nope/", nil)
			if resp, _ := do(t, c, req); resp.StatusCode != 404 {
				t.Errorf("%d", resp.StatusCode)
			}
		})
	})
}

func TestDetectDjango(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"standard layout", map[string]string{"manage.py": "", "mysite/wsgi.py": ""}, "mysite.wsgi:application"},
		{"manage.py picks among several", map[string]string{
			"manage.py":   `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zproj.settings")`,
			"aaa/wsgi.py": "", "zproj/wsgi.py": ""}, "zproj.wsgi:application"},
		{"no manage.py", map[string]string{"mysite/wsgi.py": ""}, ""},
		{"no wsgi.py", map[string]string{"manage.py": ""}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tc.files {
				os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
				os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
			}
			got, ok := DetectDjango(dir)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("DetectDjango = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}

// TestFlask runs a real Flask app mounted at /flask/. GET routes go through the PEP
// 3333 validator too; requests with bodies use the bare app, because Werkzeug reads
// an input_terminated stream with read() and no size, which PEP 3333 allows and the
// validator does not.
func TestFlask(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		python := peertest.Python(t, "flask")
		dir, _ := filepath.Abs("testdata/flask")
		bare := startSite(t, Options{Mode: mode, App: "flaskapp:app", Python: python, Chdir: dir, Route: "/flask/"}, nil)
		validated := startSite(t, Options{Mode: mode, App: "validated:app", Python: python, Chdir: dir, Route: "/flask/", Processes: 1}, nil)
		c := newClient(t)
		for _, s := range []*site{bare, validated} {
			get := func(path string) (*http.Response, string) {
				req, _ := http.NewRequest("GET", s.srv.URL+path, nil)
				return do(t, c, req)
			}
			if resp, body := get("/flask/"); resp.StatusCode != 200 || body != "Hello from Flask; login is at /flask/login" {
				t.Errorf("index: %d %q", resp.StatusCode, body)
			}
			if resp, body := get("/flask/stream"); resp.StatusCode != 200 || body != "line 0\nline 1\nline 2\n" {
				t.Errorf("stream: %d %q", resp.StatusCode, body)
			}
			if resp, _ := get("/flask/boom"); resp.StatusCode != 500 {
				t.Errorf("exception: %d", resp.StatusCode)
			}
			peertest.WaitFor(t, 20*time.Second, "Flask's traceback in the log", func() bool { return strings.Contains(s.logs.String(), "KeyError: 'flask boom'") })
		}

		base := bare.srv.URL
		req, _ := http.NewRequest("POST", base+"/flask/login", strings.NewReader("user=ada"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, body := do(t, c, req); resp.StatusCode != 200 || body != "welcome ada" {
			t.Errorf("login: %d %q", resp.StatusCode, body)
		}
		req, _ = http.NewRequest("GET", base+"/flask/login", nil)
		if _, body := do(t, c, req); body != "who are you? ada" {
			t.Errorf("session cookie not kept: %q", body)
		}
		req, _ = http.NewRequest("POST", base+"/flask/json", unsized{strings.NewReader(`{"a": [1, 2]}`)})
		req.Header.Set("Content-Type", "application/json")
		if resp, body := do(t, c, req); resp.StatusCode != 200 || !strings.Contains(body, `"received":{"a":[1,2]}`) {
			t.Errorf("chunked JSON: %d %q", resp.StatusCode, body)
		}
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("file", "big.bin")
		fw.Write(bytes.Repeat([]byte("z"), 300<<10))
		mw.Close()
		req, _ = http.NewRequest("POST", base+"/flask/upload", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		if resp, body := do(t, c, req); resp.StatusCode != 200 || body != "big.bin 307200" {
			t.Errorf("upload: %d %q", resp.StatusCode, body)
		}
	})
}
