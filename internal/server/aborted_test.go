package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/internal/accesslog"
	"gantry/internal/config"
	"gantry/internal/dashboard"
	"gantry/internal/peertest"
	"gantry/internal/server"
	"gantry/internal/telescope/httpsensor"
)

// shortUpstream is an HTTP server that declares 100 bytes of body, sends 10 and
// closes the connection.
func shortUpstream(t *testing.T) string {
	t.Helper()
	u := peertest.RawUpstream(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 4096)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789")
	})
	return strings.TrimPrefix(u, "http://")
}

// TestShortBodyAborted: for every gateway, a backend that declares Content-Length:
// 100 and sends 10 bytes leaves the client with a closed connection (never a kept
// one after a short body), an access log line with the real byte count and the
// marker, an error log line naming the route and the counts, and the dashboard's
// counter raised; on the fast path and off it.
func TestShortBodyAborted(t *testing.T) {
	phpCGI := peertest.Binary(t, "php-cgi", "php-cgi8.2")
	py := peertest.Python(t)
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("www/short.php", "<?php header('Content-Type: text/plain'); header('Content-Length: 100'); echo '0123456789';\n", 0o644)
	write("cgi-bin/short", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nContent-Length: 100\\r\\n\\r\\n0123456789'\n", 0o755)
	write("app/short_app.py", `def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "100")])
    return [b"0123456789"]
`, 0o644)
	write("slow/slow", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\npartial'\nexec sleep 60\n", 0o755)
	upstream := shortUpstream(t)

	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_path=%v", fast), func(t *testing.T) {
			logFile := filepath.Join(t.TempDir(), "access.log")
			conf := fmt.Sprintf(`[server]
listen = ["127.0.0.1:0"]
access_log = %[1]q
fast_path = %[2]v
[admin]
listen = "off"
[[site]]
root = %[3]q
  [[site.route]]
  path = "*.php"
  fastcgi_command = [%[4]q]
  processes = 1
  [[site.route]]
  path = "/cgi-bin/"
  cgi = %[5]q
  [[site.route]]
  path = "/wsgi/"
  wsgi = "short_app:application"
  python = %[6]q
  chdir = %[7]q
  processes = 1
  [[site.route]]
  path = "/proxy/"
  proxy = "http://%[8]s"
  [[site.route]]
  path = "/slow/"
  cgi = %[9]q
  timeout = "300ms"
`, logFile, fast, filepath.Join(dir, "www"), phpCGI, filepath.Join(dir, "cgi-bin"), py, filepath.Join(dir, "app"), upstream,
				filepath.Join(dir, "slow", "slow"))
			file := filepath.Join(t.TempDir(), "gantry.toml")
			if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			errLog := &peertest.LogBuffer{}
			srv, err := server.New(context.Background(), cfg, server.Options{Logger: slog.New(slog.NewTextHandler(errLog, nil))})
			if err != nil {
				t.Fatal(err)
			}
			dash, err := dashboard.New(dashboard.Options{Server: srv})
			if err != nil {
				t.Fatal(err)
			}
			srv.Observe(func(rec *accesslog.Record) { dash.Observe(rec, httpsensor.Verdict{}) })
			srv.Serve()
			admin := httptest.NewServer(dash)
			t.Cleanup(func() {
				admin.Close()
				dash.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				srv.Shutdown(ctx)
			})
			addr := srv.Addrs()[0].String()

			t.Run("cgi timeout after the header", func(t *testing.T) {
				got := exchangeClosed(t, addr, "/slow/x")
				if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.Contains(got, "partial") || strings.HasSuffix(got, "0\r\n\r\n") {
					t.Fatalf("client got %q: want the head, the partial body and no end of the chunked body", got)
				}
				if line := accessLine(t, logFile, "/slow/x"); !strings.HasSuffix(line, `" "aborted=timeout"`) {
					t.Errorf("access log line %q: want the aborted=timeout marker", line)
				}
				metric := `gantry_responses_aborted_total{reason="timeout",route="/slow/",site="default"} 1`
				if m := scrape(t, admin.URL); !strings.Contains(m, metric) {
					t.Errorf("metrics lack %q:\n%s", metric, grepLines(m, "aborted"))
				}
			})
			for _, tc := range []struct{ name, path, route string }{
				{"fastcgi", "/short.php", "*.php"},
				{"cgi", "/cgi-bin/short", "/cgi-bin/"},
				{"wsgi", "/wsgi/x", "/wsgi/"},
				{"proxy", "/proxy/x", "/proxy/"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					got := exchangeClosed(t, addr, tc.path)
					if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got, "\r\n\r\n0123456789") {
						t.Fatalf("client got %q: want the head and the 10 bytes sent", got)
					}
					line := accessLine(t, logFile, tc.path)
					if !strings.Contains(line, `" 200 10 "`) || !strings.HasSuffix(line, `" "aborted=backend"`) {
						t.Errorf("access log line %q: want status 200, 10 bytes and the aborted=backend marker", line)
					}
					wantErr := fmt.Sprintf(`msg="backend response shorter than its Content-Length; connection closed" route=%s uri=%s declared=100 sent=10`, tc.route, tc.path)
					if !strings.Contains(errLog.String(), wantErr) {
						t.Errorf("error log lacks %q:\n%s", wantErr, errLog)
					}
					metric := fmt.Sprintf(`gantry_responses_aborted_total{reason="backend",route="%s",site="default"} 1`, tc.route)
					if m := scrape(t, admin.URL); !strings.Contains(m, metric) {
						t.Errorf("metrics lack %q:\n%s", metric, grepLines(m, "aborted"))
					}
				})
			}
		})
	}
}

// exchangeClosed sends a keep-alive GET for path and reads until the server
// closes the connection: a connection kept open fails the test at the deadline.
func exchangeClosed(t *testing.T, addr, path string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("connection not closed after a cut response: %v after %q", err, got)
	}
	return string(got)
}

// accessLine waits for the access log line of a GET for path.
func accessLine(t *testing.T, logFile, path string) string {
	t.Helper()
	var line string
	peertest.WaitFor(t, 0, "the access log line for "+path, func() bool {
		b, _ := os.ReadFile(logFile)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "GET "+path+" ") {
				line = l
				return true
			}
		}
		return false
	})
	return line
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
