package static

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

func spaTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "index.html"), "the app")
	writeFile(t, filepath.Join(root, "main.js"), "console.log(1)")
	writeFile(t, filepath.Join(root, "about.html"), "about page")
	writeFile(t, filepath.Join(root, "assets", "logo.svg"), "<svg/>")
	writeFile(t, filepath.Join(root, "docs", "index.html"), "docs index")
	writeFile(t, filepath.Join(root, ".env"), "SECRET_KEY=1")
	return root
}

// TestTryFilesStaticRoute follows nginx's try_files: a candidate that exists is
// served, the fallback is an internal rewrite (its status is the fallback file's),
// and "=404" answers 404. Each case runs twice, the second time through the
// cache, and once more through ServeCached (the fast path's entry).
func TestTryFilesStaticRoute(t *testing.T) {
	root := spaTree(t)
	spa := []string{"{path}", "{path}/", "/index.html"}
	strict := []string{"{path}", "{path}/", "=404"}
	pretty := []string{"{path}.html", "=404"}
	tests := []struct {
		name, target string
		try          []string
		status       int
		body, ctype  string
	}{
		{"spa: the route's root", "/app/", spa, 200, "the app", "text/html"},
		{"spa: deep link", "/app/some/deep/link", spa, 200, "the app", "text/html"},
		{"spa: real file", "/app/main.js", spa, 200, "console.log(1)", "text/javascript"},
		{"spa: real file in a directory", "/app/assets/logo.svg", spa, 200, "<svg/>", "image/svg+xml"},
		{"spa: missing file gets the app, as in nginx", "/app/missing.js", spa, 200, "the app", "text/html"},
		{"spa: directory's own index", "/app/docs/", spa, 200, "docs index", "text/html"},
		{"spa: directory without slash redirected", "/app/docs", spa, 301, "", ""},
		{"spa: dotfile still refused", "/app/.env", spa, 404, "", ""},
		{"spa: query kept out of the lookup", "/app/main.js?v=2", spa, 200, "console.log(1)", "text/javascript"},
		{"=404: real file", "/app/main.js", strict, 200, "console.log(1)", "text/javascript"},
		{"=404: missing file", "/app/missing.js", strict, 404, "", ""},
		{"=404: deep link", "/app/some/deep/link", strict, 404, "", ""},
		{"pretty: /about is about.html", "/app/about", pretty, 200, "about page", "text/html"},
		{"pretty: about.html itself is not a candidate", "/app/about.html", pretty, 404, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler(t, Options{Root: root, Route: "/app/", TryFiles: tc.try})
			// about.html is served (and cached) once through /about first, so a
			// cached file cannot stand in for try_files's answer.
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/app/about", nil))
			for round := range 2 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", tc.target, nil))
				check(t, round, tc.target, rec, tc.status, tc.body, tc.ctype)
			}
			rec := httptest.NewRecorder()
			if h.ServeCached(rec, httptest.NewRequest("GET", tc.target, nil)) {
				check(t, 2, tc.target, rec, tc.status, tc.body, tc.ctype)
			}
		})
	}
}

func check(t *testing.T, round int, target string, rec *httptest.ResponseRecorder, status int, body, ctype string) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("round %d: GET %s: status %d, want %d (%q)", round, target, rec.Code, status, rec.Body.String())
	}
	if status == 200 && (rec.Body.String() != body || !strings.HasPrefix(rec.Header().Get("Content-Type"), ctype)) {
		t.Errorf("round %d: GET %s: %q %q, want %q %q", round, target, rec.Header().Get("Content-Type"), rec.Body.String(), ctype, body)
	}
	if strings.Contains(rec.Body.String(), "SECRET_KEY") {
		t.Errorf("GET %s leaked a secret", target)
	}
}

func TestTryFilesRefused(t *testing.T) {
	for _, bad := range [][]string{{"=404", "/index.html"}, {"index.html"}, {"/x?y=1"}, {"/../etc/passwd"}} {
		if _, err := New(Options{Root: t.TempDir(), TryFiles: bad}, nil); err == nil {
			t.Errorf("try_files %q accepted", bad)
		}
		o := &Options{Root: t.TempDir(), TryFiles: bad}
		if probs := o.Validate(nil); len(probs) != 1 || probs[0].Key != "try_files" {
			t.Errorf("try_files %q: problems %v, want one with try_files", bad, probs)
		}
	}
}

// TestAlsoFirstHitWins serves several directories as one tree, in order.
func TestAlsoFirstHitWins(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(a, "only-a.css"), "a")
	writeFile(t, filepath.Join(a, "both.css"), "from a")
	writeFile(t, filepath.Join(b, "both.css"), "from b")
	writeFile(t, filepath.Join(b, "admin", "base.css"), "admin css")
	writeFile(t, filepath.Join(c, "only-c.css"), "c")
	writeFile(t, filepath.Join(c, ".secret"), "SECRET_KEY=1")
	h := newHandler(t, Options{Root: a, Route: "/static/", Also: []string{b, c}})
	tests := []struct {
		target string
		status int
		body   string
	}{
		{"/static/only-a.css", 200, "a"},
		{"/static/both.css", 200, "from a"},
		{"/static/admin/base.css", 200, "admin css"},
		{"/static/only-c.css", 200, "c"},
		{"/static/missing.css", 404, ""},
		{"/static/.secret", 404, ""},
		{"/static/admin", 301, ""},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			for round := range 2 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", tc.target, nil))
				check(t, round, tc.target, rec, tc.status, tc.body, "text/")
			}
		})
	}
	// A file added to an earlier directory takes over, as a finder would find it.
	writeFile(t, filepath.Join(a, "only-c.css"), "now a")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/static/only-c.css", nil))
	check(t, 2, "/static/only-c.css", rec, 200, "now a", "text/css")
	if err := h.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}
