// Package cgibin checks the demo's CGI guestbook through gantry's CGI handler.
package cgibin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gantry/internal/cgi"
	"gantry/internal/peertest"
)

func newServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	peertest.Binary(t, "perl")
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	h, err := cgi.New(cgi.Options{Path: dir, Route: "/cgi-bin/", DocumentRoot: filepath.Dir(dir),
		Env: map[string]string{"DEMO_DATA_DIR": data}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	srv.Client().Timeout = 30 * time.Second
	t.Cleanup(func() {
		srv.Close()
		h.Shutdown(t.Context())
	})
	return srv, data
}

func post(t *testing.T, srv *httptest.Server, form url.Values, origin string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+"/cgi-bin/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	client := *srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func get(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + "/cgi-bin/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /cgi-bin/: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return string(b)
}

func TestGuestbook(t *testing.T) {
	srv, data := newServer(t)
	page := get(t, srv)
	// The demo's shared header, navigation and footer, read from ../assets/partials.
	for _, want := range []string{`<html lang="en">`, `<form class="stack" method="post" action="/cgi-bin/">`, "No entries yet", "CGI/1.1",
		`<header class="site-header">`, `<li><a href="/cgi-bin/">CGI</a></li>`, `<footer class="site-footer">`, `<link rel="stylesheet" href="/assets/site.css">`} {
		if !strings.Contains(page, want) {
			t.Errorf("empty guestbook page lacks %q", want)
		}
	}

	resp := post(t, srv, url.Values{"name": {"Ada <b>"}, "message": {"Hello\n<script>alert(1)</script> — café"}}, srv.URL)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/cgi-bin/" {
		t.Fatalf("sign: %d Location %q, want 303 to /cgi-bin/", resp.StatusCode, resp.Header.Get("Location"))
	}
	page = get(t, srv)
	for _, want := range []string{"<strong>Ada &lt;b&gt;</strong>", "Hello<br>&lt;script&gt;alert(1)&lt;/script&gt; — café"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks the escaped entry %q", want)
		}
	}
	// The time is machine-readable, for the reader's browser to put in words.
	if !regexp.MustCompile(`<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" data-relative>`).MatchString(page) {
		t.Error("the entry's time is not a <time datetime> in ISO 8601")
	}
	if strings.Contains(page, "<script>") {
		t.Error("an entry's markup reached the page unescaped")
	}
	if _, err := os.Stat(filepath.Join(data, "guestbook.tsv")); err != nil {
		t.Errorf("entry not stored in DEMO_DATA_DIR: %v", err)
	}
}

func TestGuestbookRefuses(t *testing.T) {
	srv, _ := newServer(t)
	tests := []struct {
		name   string
		form   url.Values
		origin string
		status int
	}{
		{"empty name", url.Values{"name": {" "}, "message": {"hi"}}, "", http.StatusUnprocessableEntity},
		{"a name with only control characters", url.Values{"name": {"\x01\x02"}, "message": {"hi"}}, "", http.StatusUnprocessableEntity},
		{"long message", url.Values{"name": {"a"}, "message": {strings.Repeat("x", 501)}}, "", http.StatusUnprocessableEntity},
		{"cross-site post", url.Values{"name": {"a"}, "message": {"hi"}}, "http://evil.example", http.StatusForbidden},
		{"too large", url.Values{"name": {"a"}, "message": {strings.Repeat("x", 9000)}}, "", http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if resp := post(t, srv, tc.form, tc.origin); resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
	if page := get(t, srv); !strings.Contains(page, "No entries yet") {
		t.Error("a refused entry was stored")
	}
}

// An entry comes back as it was written: the file's escapes (\n, \t, \\) are read
// back in one pass, so a backslash the writer typed before an n or a t stays a
// backslash and does not become a line break or a tab.
func TestGuestbookKeepsBackslashes(t *testing.T) {
	srv, _ := newServer(t)
	tests := []struct{ name, message, shows string }{
		{"a Windows path", `C:\new\temp`, `C:\new\temp`},
		{"a doubled backslash before n", `a\\nb`, `a\\nb`},
		{"a real line break after a backslash", "end\\\nnext", `end\<br>next`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if resp := post(t, srv, url.Values{"name": {tt.name}, "message": {tt.message}}, srv.URL); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign: %d", resp.StatusCode)
			}
			page := get(t, srv)
			want := "<strong>" + tt.name + "</strong>"
			i := strings.Index(page, want)
			if i < 0 {
				t.Fatalf("entry %q missing", tt.name)
			}
			if !strings.Contains(page[i:], tt.shows+"</li>") {
				end := min(len(page), i+200)
				t.Errorf("entry shows %q, want %q", page[i:end], tt.shows)
			}
		})
	}
}
