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

// TestServedAddressToOpen: a listener on every interface (:8080, 0.0.0.0, [::])
// is no address a browser opens; the block names one that is.
func TestServedAddressToOpen(t *testing.T) {
	dir := t.TempDir()
	cfg, _, err := dirConfig(dir, serveFlags{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ addr, want string }{
		{"127.0.0.1:8080", "open http://127.0.0.1:8080/\n"},
		{"[::]:8080", "open http://localhost:8080/\n"},
		{"0.0.0.0:8080", "open http://localhost:8080/\n"},
		{"[::1]:8080", "open http://[::1]:8080/\n"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			got := servedText(cfg, []string{tc.addr}, []string{tc.addr})
			if !strings.Contains(got, tc.want) || !strings.Contains(got, strings.Replace(tc.want, "http:", "https:", 1)) {
				t.Errorf("block\n%s\nlacks %q (and its https twin)", got, tc.want)
			}
		})
	}
}
