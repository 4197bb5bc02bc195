package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServedText pins the block `gantry serve DIR` prints: the directory, each
// route found in it with what answers it, and the address to open.
func TestServedText(t *testing.T) {
	cases := []struct {
		name  string
		files []string // made under DIR; a trailing slash makes a directory
		flags serveFlags
	}{
		{"static files", []string{"index.html"}, serveFlags{}},
		{"cgi-bin and PHP", []string{"index.php", "cgi-bin/"}, serveFlags{php: "127.0.0.1:9000"}},
		{"Django project", []string{"manage.py", "mysite/wsgi.py", "cgi-bin/"}, serveFlags{python: "/bin/false"}},
		{"WSGI app", []string{"hello.py"}, serveFlags{wsgi: "hello:app", python: "/usr/bin/python3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				p := filepath.Join(dir, f)
				if strings.HasSuffix(f, "/") {
					os.MkdirAll(p, 0o755)
					continue
				}
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte("\n"), 0o644)
			}
			cfg, _, err := dirConfig(dir, tc.flags)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.ReplaceAll(servedText(cfg, []string{"127.0.0.1:8080"}, nil), dir, "DIR")
			golden(t, filepath.Join("served", strings.ReplaceAll(tc.name, " ", "-")+".txt"), got)
		})
	}
}
