package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBrowseAndTryFilesThroughServer runs a listing and a single-page app through
// the real server: its path normalisation, fast path, routing and middleware.
func TestBrowseAndTryFilesThroughServer(t *testing.T) {
	dir := t.TempDir()
	files, app, outside := filepath.Join(dir, "files"), filepath.Join(dir, "app"), filepath.Join(dir, "outside")
	names := []string{"<script>x<", `q"uote'.txt`, "100%.txt", "new\nline.txt", "caf\xe9.txt", "plain.txt"}
	for _, n := range names {
		writeFile(t, filepath.Join(files, n), "content of "+n)
	}
	writeFile(t, filepath.Join(files, ".env"), "SECRET_KEY=1")
	writeFile(t, filepath.Join(files, "sub", "a.txt"), "a")
	writeFile(t, filepath.Join(outside, "secret.txt"), "SECRET_KEY=2")
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(files, "out.txt")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(app, "index.html"), "the app")
	writeFile(t, filepath.Join(app, "main.js"), "js")
	_, base, _ := startServer(t, fmt.Sprintf(`
[server]
listen = ["127.0.0.1:0"]
access_log = "off"
[admin]
listen = "off"
[[site]]
root = %[1]q
headers = { "X-Site" = "yes" }
  [[site.route]]
  path = "/"
  static = %[1]q
  browse = true
  [[site.route]]
  path = "/app/"
  static = %[2]q
  try_files = ["{path}", "{path}/", "/index.html"]
`, files, app))

	get := func(path string, header ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest("GET", base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	resp, body := get("/", "Accept", "application/json")
	var entries []struct {
		Name  string `json:"name"`
		URL   string `json:"url"`
		IsDir bool   `json:"is_dir"`
	}
	if err := json.Unmarshal([]byte(body), &entries); err != nil || resp.StatusCode != 200 {
		t.Fatalf("listing: %d %v %q", resp.StatusCode, err, body)
	}
	if len(entries) != len(names)+1 {
		t.Errorf("listed %d entries, want %d (the files and sub/): %+v", len(entries), len(names)+1, entries)
	}
	for _, e := range entries {
		if e.Name == ".env" || e.Name == "out.txt" {
			t.Errorf("listed %q", e.Name)
		}
		r, b := get("/" + strings.TrimPrefix(e.URL, "./"))
		if r.StatusCode != 200 || !e.IsDir && !strings.HasPrefix(b, "content of ") {
			t.Errorf("%q is listed, but %s answers %d %q", e.Name, e.URL, r.StatusCode, b)
		}
	}
	resp, body = get("/")
	if resp.StatusCode != 200 || !strings.Contains(body, "&lt;script&gt;x&lt;") || strings.Contains(body, "<script>") || resp.Header.Get("X-Site") != "yes" {
		t.Errorf("HTML listing: %d, X-Site %q:\n%s", resp.StatusCode, resp.Header.Get("X-Site"), body)
	}
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/app/", 200, "the app"},
		{"/app/some/deep/link", 200, "the app"},
		{"/app/main.js", 200, "js"},
		{"/app/main.js", 200, "js"}, // again: from the cache, on the fast path
		{"/app/deep/link?x=1", 200, "the app"},
		{"/out.txt", 404, ""},
		{"/.env", 404, ""},
	} {
		resp, body := get(tc.path)
		if resp.StatusCode != tc.status || tc.body != "" && body != tc.body || strings.Contains(body, "SECRET_KEY") {
			t.Errorf("GET %s: %d %q, want %d %q", tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
	}
}
