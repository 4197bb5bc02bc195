package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// site is the directory gantry serves during the soak, with its apps and the
// three configs the fault loop switches between.
type site struct {
	dir                     string
	port, admin, dark       int
	wsUpstream, stuck       string // host:port of the WebSocket echo and the stuck upstream
	statics                 map[string]string
	configA, configB, wrong string // config texts
	config                  string // the file gantry reads
}

const phpApp = `<?php
// Verifies the checksum the client sent with the body, echoes what it computed.
$body = file_get_contents('php://input');
$sum = hash('sha256', $body);
header('Content-Type: text/plain');
if (!hash_equals($sum, $_SERVER['HTTP_X_SUM'] ?? '')) {
    http_response_code(422);
}
echo $sum, ' ', strlen($body);
`

const wsgiApp = `import hashlib
import time


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/hang":
        time.sleep(float(environ.get("QUERY_STRING") or "5"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"woke"]
    n = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(n) if n else b""
    s = hashlib.sha256(body).hexdigest()
    ok = s == environ.get("HTTP_X_SUM", "")
    out = ("%s %d" % (s, len(body))).encode()
    start_response("200 OK" if ok else "422 Unprocessable Entity",
                   [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]
`

const cgiScript = `#!/usr/bin/python3
import hashlib, os, sys
n = int(os.environ.get("CONTENT_LENGTH") or 0)
body = sys.stdin.buffer.read(n) if n else b""
s = hashlib.sha256(body).hexdigest()
ok = s == os.environ.get("HTTP_X_SUM", "")
sys.stdout.write("Status: %s\r\nContent-Type: text/plain\r\n\r\n%s %d" % ("200 OK" if ok else "422 Bad Sum", s, len(body)))
`

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func newSite(dir, wsUpstream, stuck string) (*site, error) {
	s := &site{dir: dir, wsUpstream: wsUpstream, stuck: stuck, statics: map[string]string{}}
	for _, p := range []*int{&s.port, &s.admin, &s.dark} {
		var err error
		if *p, err = freePort(); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		"www/app.php":       phpApp,
		"app/app.py":        wsgiApp,
		"cgi-bin/check.cgi": cgiScript,
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
			return nil, err
		}
	}
	for name, size := range map[string]int{"1k.bin": 1 << 10, "300k.bin": 300 << 10} {
		b := make([]byte, size)
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, "www", name), b, 0o644); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		s.statics["/"+name] = hex.EncodeToString(sum[:])
	}
	if err := os.MkdirAll(filepath.Join(dir, "body"), 0o700); err != nil {
		return nil, err
	}
	s.configA = s.render("A", 2)
	s.configB = s.render("B", 3)
	s.wrong = strings.Replace(s.configA, "[[site]]", "[[site]]\nno_such_key = true", 1)
	s.config = filepath.Join(dir, "gantry.toml")
	return s, os.WriteFile(s.config, []byte(s.configA), 0o644)
}

// render is a valid config; the two variants differ in a header (which a
// response shows) and in the pools' sizes (so a reload replaces the pools).
func (s *site) render(name string, procs int) string {
	return fmt.Sprintf(`[server]
listen = ["127.0.0.1:%[1]d"]
access_log = "off"
read_header_timeout = "5s"
read_timeout = "20s"
max_body = "10MB"
body_temp = %[2]q
[admin]
listen = "127.0.0.1:%[3]d"
[telescope]
dark_ports = ["127.0.0.1:%[4]d/tcp"]
[[site]]
root = %[5]q
headers = { "X-Config" = %[6]q }
  [[site.route]]
  path = "*.php"
  fastcgi_command = ["php-cgi"]
  processes = %[7]d
  timeout = "10s"
  [[site.route]]
  path = "/cgi-bin/"
  cgi = %[8]q
  timeout = "10s"
  [[site.route]]
  path = "/app/"
  wsgi = "app:application"
  chdir = %[9]q
  processes = %[7]d
  threads = 4
  timeout = "3s"
  [[site.route]]
  path = "/ws/"
  proxy = "http://%[10]s"
  [[site.route]]
  path = "/stuck/"
  proxy = "http://%[11]s"
  timeout = "2s"
`, s.port, filepath.Join(s.dir, "body"), s.admin, s.dark, filepath.Join(s.dir, "www"), name, procs,
		filepath.Join(s.dir, "cgi-bin"), filepath.Join(s.dir, "app"), s.wsUpstream, s.stuck)
}
