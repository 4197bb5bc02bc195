package server

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gantry/internal/peertest"
)

// TestXSendfile has a real PHP script and a real WSGI app hand files back with
// X-Sendfile and X-Accel-Redirect on routes with sendfile_root: gantry serves the
// file (Range, ETag, 304), keeps the application's other headers, drops the
// header, and refuses anything outside sendfile_root.
func TestXSendfile(t *testing.T) {
	phpCGI := peertest.Binary(t, "php-cgi", "php-cgi8.2")
	py := peertest.Python(t)
	base := t.TempDir()
	root, files, app := filepath.Join(base, "www"), filepath.Join(base, "private"), filepath.Join(base, "app")
	big := strings.Repeat("0123456789", 1000)
	writeFile(t, filepath.Join(files, "report.pdf"), big)
	writeFile(t, filepath.Join(files, "sub", "notes.txt"), "notes")
	writeFile(t, filepath.Join(base, "secret.txt"), "secret outside the root")
	// The script names the file from the query string, as an application
	// checking permissions would after its own lookup.
	writeFile(t, filepath.Join(root, "dl.php"), `<?php
header('Content-Disposition: attachment; filename="report.pdf"');
header('X-App: php');
header(($_GET['h'] ?? 'X-Sendfile') . ': ' . $_GET['f']);
echo "this body is replaced by the file";
`)
	writeFile(t, filepath.Join(root, "plain.php"), "<?php header('X-Sendfile: "+filepath.Join(files, "report.pdf")+"'); echo 'x';")
	writeFile(t, filepath.Join(app, "dlapp.py"), `
def application(environ, start_response):
    f = environ["QUERY_STRING"].split("=", 1)[1]
    start_response("200 OK", [("X-Accel-Redirect", f), ("X-App", "wsgi"), ("Content-Type", "text/html")])
    return [b"this body is replaced by the file"]
`)
	_, srv, _ := startServer(t, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n"+
		"[[site]]\nroot=%q\n  [[site.route]]\n  path=\"/dl.php\"\n  fastcgi_command=[%q]\n  processes=1\n  sendfile_root=%q\n"+
		"  [[site.route]]\n  path=\"/plain.php\"\n  fastcgi_command=[%q]\n  processes=1\n"+
		"  [[site.route]]\n  path=\"/wsgi/\"\n  wsgi=\"dlapp:application\"\n  python=%q\n  chdir=%q\n  processes=1\n  sendfile_root=%q\n",
		root, phpCGI, files, phpCGI, py, app, files))
	pdf := filepath.Join(files, "report.pdf")
	cases := []struct {
		name, method, path string
		hdr                map[string]string
		status             int
		body               string
		app                string // the X-App header the response must keep
	}{
		{"php X-Sendfile", "GET", "/dl.php?f=" + pdf, nil, 200, big, "php"},
		{"php X-Sendfile HEAD", "HEAD", "/dl.php?f=" + pdf, nil, 200, "", "php"},
		{"php X-Sendfile range", "GET", "/dl.php?f=" + pdf, map[string]string{"Range": "bytes=10-19"}, 206, "0123456789", "php"},
		{"php X-Sendfile after a POST", "POST", "/dl.php?f=" + pdf, nil, 200, big, "php"},
		{"php X-Accel-Redirect", "GET", "/dl.php?h=X-Accel-Redirect&f=/sub/notes.txt", nil, 200, "notes", "php"},
		{"php X-Sendfile outside the root", "GET", "/dl.php?f=" + filepath.Join(base, "secret.txt"), nil, 404, "", ""},
		{"php X-Sendfile climbing out", "GET", "/dl.php?f=" + files + "/../secret.txt", nil, 404, "", ""},
		{"php X-Sendfile relative", "GET", "/dl.php?f=report.pdf", nil, 404, "", ""},
		{"php X-Accel-Redirect climbing out", "GET", "/dl.php?h=X-Accel-Redirect&f=/../secret.txt", nil, 404, "", ""},
		{"php X-Sendfile missing file", "GET", "/dl.php?f=" + filepath.Join(files, "nope.pdf"), nil, 404, "", ""},
		{"wsgi X-Accel-Redirect", "GET", "/wsgi/x?f=/report.pdf", nil, 200, big, "wsgi"},
		{"wsgi X-Accel-Redirect climbing out", "GET", "/wsgi/x?f=/../secret.txt", nil, 404, "", ""},
		{"no sendfile_root: header passed on, body kept", "GET", "/plain.php", nil, 200, "x", ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv+c.path, nil)
		for k, v := range c.hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 0, len(big))
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b = append(b, buf[:n]...)
			if err != nil {
				break
			}
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d (%.80s)", c.name, resp.StatusCode, c.status, b)
			continue
		}
		if c.status == 404 {
			if strings.Contains(string(b), "secret") {
				t.Errorf("%s: leaked the file outside the root", c.name)
			}
			continue
		}
		if string(b) != c.body {
			t.Errorf("%s: body %.60q (%d bytes), want %.60q (%d bytes)", c.name, b, len(b), c.body, len(c.body))
		}
		if c.app != "" {
			if resp.Header.Get("X-Sendfile") != "" || resp.Header.Get("X-Accel-Redirect") != "" {
				t.Errorf("%s: the X-Sendfile/X-Accel-Redirect header reached the client", c.name)
			}
			if resp.Header.Get("X-App") != c.app {
				t.Errorf("%s: X-App %q, want the application's headers kept", c.name, resp.Header.Get("X-App"))
			}
			if c.status == 200 && resp.Header.Get("Etag") == "" {
				t.Errorf("%s: no ETag: the file was not served by the static handler", c.name)
			}
		}
		if c.name == "php X-Sendfile" {
			if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, "report.pdf") {
				t.Errorf("Content-Disposition %q: the application's header was dropped", cd)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/pdf" {
				t.Errorf("Content-Type %q, want the file's (application/pdf)", ct)
			}
			// The ETag it gave answers a conditional request with 304.
			req, _ := http.NewRequest("GET", srv+c.path, nil)
			req.Header.Set("If-None-Match", resp.Header.Get("Etag"))
			r2, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r2.Body.Close()
			if r2.StatusCode != http.StatusNotModified {
				t.Errorf("conditional GET: %d, want 304", r2.StatusCode)
			}
		}
	}
	if _, err := os.Stat(pdf); err != nil {
		t.Fatal(err)
	}
}
