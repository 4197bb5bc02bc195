package cgi

import (
	"gantry/internal/config"

	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"gantry/internal/spool/spooltest"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// metaVariables are the names a script may see: RFC 3875 §4.1, the Apache extras
// the issue asks for, PATH, and HTTP_* from request headers.
var metaVariables = []string{"AUTH_TYPE", "CONTENT_LENGTH", "CONTENT_TYPE", "GATEWAY_INTERFACE",
	"PATH_INFO", "PATH_TRANSLATED", "QUERY_STRING", "REMOTE_ADDR", "REMOTE_HOST", "REMOTE_IDENT",
	"REMOTE_USER", "REQUEST_METHOD", "SCRIPT_NAME", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL",
	"SERVER_SOFTWARE", "DOCUMENT_ROOT", "REQUEST_URI", "REMOTE_PORT", "SERVER_ADDR", "SCRIPT_FILENAME",
	"REQUEST_SCHEME", "HTTPS", "PATH"}

// interpreters are the three kinds of script every behaviour is checked with.
var interpreters = []struct{ name, script string }{
	{"sh", "env.sh"},
	{"perl", "env.pl"},
	{"C", "envc"},
}

func TestMetaVariables(t *testing.T) {
	t.Setenv("GANTRY_TEST_SECRET", "must-not-leak")
	f := newFixture(t, setupOpts{opts: func(o *Options) { o.Env = map[string]string{"APP_MODE": "test"} }})
	host := f.srv.Listener.Addr().(*net.TCPAddr)
	for _, ip := range interpreters {
		t.Run(ip.name, func(t *testing.T) {
			if ip.name == "perl" {
				peertest.Binary(t, "perl")
			}
			req := mustRequest(t, "GET", f.srv.URL+"/cgi-bin/"+ip.script+"/extra/a%20b?x=1&y=%2F", nil)
			req.Header.Set("X-Custom", "one")
			req.Header.Add("X-Custom", "two")
			req.Header.Set("Proxy", "http://evil.example:8080")
			req.Header.Set("Authorization", "Basic dTpw")
			req.Header["X_Forwarded_For"] = []string{"6.6.6.6"}
			req.Header.Set("X-Forwarded-For", "192.0.2.7")
			resp, body := f.do(t, req)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			env := parseEnv(body)
			want := map[string]string{
				"GATEWAY_INTERFACE":    "CGI/1.1",
				"SERVER_SOFTWARE":      "gantry-test",
				"SERVER_PROTOCOL":      "HTTP/1.1",
				"SERVER_NAME":          "127.0.0.1",
				"SERVER_PORT":          strconv.Itoa(host.Port),
				"REQUEST_METHOD":       "GET",
				"REQUEST_URI":          "/cgi-bin/" + ip.script + "/extra/a%20b?x=1&y=%2F",
				"QUERY_STRING":         "x=1&y=%2F",
				"SCRIPT_NAME":          "/cgi-bin/" + ip.script,
				"PATH_INFO":            "/extra/a b",
				"PATH_TRANSLATED":      f.root + "/extra/a b",
				"SCRIPT_FILENAME":      filepath.Join(f.dir, ip.script),
				"DOCUMENT_ROOT":        f.root,
				"REMOTE_ADDR":          "127.0.0.1",
				"AUTH_TYPE":            "Basic",
				"HTTP_X_CUSTOM":        "one, two",
				"HTTP_X_FORWARDED_FOR": "192.0.2.7",
				"REQUEST_SCHEME":       "http",
				"PATH":                 defaultPath,
				"APP_MODE":             "test",
			}
			for k, v := range want {
				if got, ok := env[k]; !ok || got != v {
					t.Errorf("%s = %q (set: %v), want %q", k, got, ok, v)
				}
			}
			if _, err := strconv.Atoi(env["REMOTE_PORT"]); err != nil {
				t.Errorf("REMOTE_PORT = %q, want a port number", env["REMOTE_PORT"])
			}
			for _, k := range []string{"HTTP_PROXY", "HTTP_AUTHORIZATION", "HTTPS", "CONTENT_LENGTH", "GANTRY_TEST_SECRET"} {
				if v, ok := env[k]; ok {
					t.Errorf("%s = %q, want it unset", k, v)
				}
			}
			for k := range env {
				allowed := slices.Contains(metaVariables, k) || strings.HasPrefix(k, "HTTP_") || k == "APP_MODE" ||
					(ip.name == "sh" && k == "PWD") // the shell itself exports PWD
				if !allowed {
					t.Errorf("unexpected variable %s=%q in the script's environment", k, env[k])
				}
			}
		})
	}
}

func TestQueryStringAlwaysSet(t *testing.T) {
	f := newFixture(t, setupOpts{})
	_, body := f.get(t, "/cgi-bin/envc")
	env := parseEnv(body)
	if v, ok := env["QUERY_STRING"]; !ok || v != "" {
		t.Errorf("QUERY_STRING = %q (set: %v), want set and empty", v, ok)
	}
	if _, ok := env["PATH_INFO"]; ok && env["PATH_INFO"] != "" {
		t.Errorf("PATH_INFO = %q, want empty", env["PATH_INFO"])
	}
	if _, ok := env["PATH_TRANSLATED"]; ok {
		t.Error("PATH_TRANSLATED set without PATH_INFO")
	}
}

// CVE-2012-1823: a query string without "=" must never become argv.
func TestNoArgvFromQuery(t *testing.T) {
	f := newFixture(t, setupOpts{})
	for _, ip := range interpreters {
		if ip.name == "sh" {
			continue // env.sh does not print argv
		}
		t.Run(ip.name, func(t *testing.T) {
			if ip.name == "perl" {
				peertest.Binary(t, "perl")
			}
			for _, q := range []string{"-s", "-d+allow_url_include%3d1+-d+auto_prepend_file%3dphp://input", "a+b+c"} {
				resp, body := f.get(t, "/cgi-bin/"+ip.script+"?"+q)
				if resp.StatusCode != 200 {
					t.Fatalf("?%s: status %d", q, resp.StatusCode)
				}
				if !strings.Contains(body, "ARGC=1\n") || strings.Contains(body, "ARGV=") {
					t.Errorf("?%s: script got arguments:\n%s", q, body[:min(len(body), 200)])
				}
			}
		})
	}
}

func TestHTTPSUnderTLS(t *testing.T) {
	f := newFixture(t, setupOpts{tls: true})
	_, body := f.get(t, "/cgi-bin/envc")
	env := parseEnv(body)
	if env["HTTPS"] != "on" || env["REQUEST_SCHEME"] != "https" {
		t.Errorf("HTTPS = %q, REQUEST_SCHEME = %q, want on, https", env["HTTPS"], env["REQUEST_SCHEME"])
	}
}

func TestPassAuthorization(t *testing.T) {
	f := newFixture(t, setupOpts{opts: func(o *Options) { o.PassAuthorization = true }})
	req := mustRequest(t, "GET", f.srv.URL+"/cgi-bin/envc", nil)
	req.Header.Set("Authorization", "Bearer abc")
	_, body := f.do(t, req)
	if got := parseEnv(body)["HTTP_AUTHORIZATION"]; got != "Bearer abc" {
		t.Errorf("HTTP_AUTHORIZATION = %q, want it passed when configured", got)
	}
}

// Only stdin, stdout and stderr reach a script, even a descriptor gantry inherited
// without close-on-exec.
func TestOnlyStandardDescriptors(t *testing.T) {
	fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY, 0) // no O_CLOEXEC, like an inherited fd
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	f := newFixture(t, setupOpts{})
	req := mustRequest(t, "POST", f.srv.URL+"/cgi-bin/envc", strings.NewReader("body"))
	_, body := f.do(t, req)
	if strings.Contains(body, "OPENFD=") {
		t.Errorf("script saw extra descriptors (leaked fd was %d):\n%s", fd, body)
	}
	if !strings.Contains(body, "STDIN=body") {
		t.Errorf("stdin not passed: %s", body)
	}
}

// spooling hands bodies on as the server does: spooled, or, for a request with an
// X-Stream header (request_buffering = false), as they arrive.
func spooling(t *testing.T, limit int64) func(http.Handler) http.Handler {
	return spooltest.Wrap(t, limit, func(r *http.Request) bool { return r.Header.Get("X-Stream") != "" })
}

func TestRequestBody(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16) // past the in-memory spool
	tests := []struct {
		name    string
		script  string
		body    []byte
		chunked bool
		stream  bool
	}{
		{"sh content-length", "env.sh", []byte("hello=world"), false, false},
		{"perl content-length", "env.pl", []byte("hello=world"), false, false},
		{"C content-length", "envc", []byte("hello=world"), false, false},
		{"sh chunked", "env.sh", []byte("chunked body"), true, false},
		{"perl chunked", "env.pl", []byte("chunked body"), true, false},
		{"C chunked", "envc", []byte("chunked body"), true, false},
		{"C chunked empty", "envc", nil, true, false},
		{"C large spooled to disk", "envc", big, false, false},
		{"C large chunked spooled to disk", "envc", big, true, false},
		{"C large streamed", "envc", big, false, true},
		{"sh small streamed", "env.sh", []byte("hello=world"), false, true},
	}
	f := newFixture(t, setupOpts{wrap: spooling(t, 10<<20)})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if strings.HasSuffix(tc.script, ".pl") {
				peertest.Binary(t, "perl")
			}
			var r io.Reader = bytes.NewReader(tc.body)
			if tc.chunked {
				r = io.MultiReader(r) // hides the length: the client sends it chunked
			}
			req := mustRequest(t, "POST", f.srv.URL+"/cgi-bin/"+tc.script, r)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.chunked {
				req.ContentLength = -1
				req.TransferEncoding = []string{"chunked"}
			}
			if tc.stream {
				req.Header.Set("X-Stream", "1")
			}
			resp, body := f.do(t, req)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body[:min(200, len(body))])
			}
			env := parseEnv(body)
			if got := env["CONTENT_LENGTH"]; got != strconv.Itoa(len(tc.body)) {
				t.Errorf("CONTENT_LENGTH = %q, want %d", got, len(tc.body))
			}
			if got := env["CONTENT_TYPE"]; got != "application/x-www-form-urlencoded" {
				t.Errorf("CONTENT_TYPE = %q", got)
			}
			_, echoed, _ := strings.Cut(body, "STDIN=")
			if sha256.Sum256([]byte(echoed)) != sha256.Sum256(tc.body) {
				t.Errorf("stdin: got %d bytes, want %d", len(echoed), len(tc.body))
			}
		})
	}
}

// A streamed body (request_buffering = false) is limited by http.MaxBytesReader
// while the script runs; beyond it the client gets 413.
func TestBodyTooLarge(t *testing.T) {
	f := newFixture(t, setupOpts{wrap: spooling(t, 1000)})
	req := mustRequest(t, "POST", f.srv.URL+"/cgi-bin/read.sh", strings.NewReader(strings.Repeat("x", 100<<10)))
	req.Header.Set("X-Stream", "1")
	resp, got := f.do(t, req)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d (%q), want 413", resp.StatusCode, got)
	}
	if !strings.Contains(f.logs.String(), "too large") {
		t.Errorf("no log line for the 413:\n%s", f.logs)
	}
}

// A body of unknown length that was not spooled never reaches a script without a
// CONTENT_LENGTH.
func TestUnspooledChunkedBody(t *testing.T) {
	f := newFixture(t, setupOpts{})
	req := mustRequest(t, "POST", f.srv.URL+"/cgi-bin/env.sh", io.MultiReader(strings.NewReader("body")))
	resp, got := f.do(t, req)
	if resp.StatusCode != http.StatusLengthRequired {
		t.Errorf("status %d (%q), want 411", resp.StatusCode, got)
	}
}

func TestResponseHeaders(t *testing.T) {
	tests := []struct {
		query      string
		status     int
		header     map[string]string
		body       string
		logs       string // a line the handler must log
		absent     []string
		wantLength string // the Content-Length the client sees, "" for none expected
	}{
		{query: "ok", status: 200, header: map[string]string{"X-Script": "yes", "Content-Type": "text/plain"}, body: "body"},
		{query: "lf", status: 200, header: map[string]string{"X-Script": "lf"}, body: "body"},
		{query: "status", status: 404, body: "missing"},
		{query: "status-only", status: 201, body: "", absent: []string{"Content-Type"}},
		// A folded line is refused, as nginx and Apache do.
		{query: "fold", status: 502, logs: "continuation line (obs-fold)", absent: []string{"X-Long"}},
		{query: "status-tab", status: 404, body: "missing"},
		{query: "location-empty", status: 302, header: map[string]string{"Location": ""}},
		{query: "location-twice", status: 502, logs: "more than one Location field", absent: []string{"Location"}},
		{query: "proxy-auth", status: 200, body: "plain", absent: []string{"Proxy-Authenticate", "Proxy-Connection"}},
		{query: "huge-header", status: 502, logs: "header longer than 32768 bytes", absent: []string{"X-H0"}},
		{query: "length", status: 200, body: "hello", wantLength: "5"},
		{query: "hop", status: 200, body: "plain", absent: []string{"Connection"}},
		{query: "nocontent", status: 204, body: ""},
		{query: "notmodified", status: 304, body: ""},
		{query: "location", status: 302, header: map[string]string{"Location": "http://example.com/elsewhere"}},
		{query: "location-status", status: 301, header: map[string]string{"Location": "/moved"}},
		{query: "scheme-relative", status: 302, header: map[string]string{"Location": "//evil.example/x"}},
		{query: "bad-name", status: 502, logs: "not a token", absent: []string{"Bad Name"}},
		{query: "bad-ctl", status: 502, logs: "control byte", absent: []string{"X-Bad"}},
		{query: "bad-nul", status: 502, logs: "control byte", absent: []string{"X-Bad"}},
		{query: "bad-cr", status: 502, logs: "control byte", absent: []string{"X-Bad", "Set-Cookie"}},
		{query: "bad-status", status: 502, logs: "bogus Status"},
		{query: "bad-status-word", status: 502, logs: "bogus Status"},
		{query: "bad-status-1xx", status: 502, logs: "not a final response status"},
		{query: "bad-length", status: 502, logs: "bogus Content-Length"},
		{query: "no-header", status: 502, logs: "no field name"},
		{query: "empty", status: 502, logs: "before sending a complete header"},
		{query: "crash", status: 502, logs: "exit status 3"},
	}
	f := newFixture(t, setupOpts{})
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			resp, body := f.get(t, "/cgi-bin/respond.sh?"+tc.query)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d (body %q)", resp.StatusCode, tc.status, body)
			}
			for k, v := range tc.header {
				if got, ok := resp.Header[k]; !ok || got[0] != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for _, k := range tc.absent {
				if v, ok := resp.Header[k]; ok {
					t.Errorf("%s passed to the client: %q", k, v)
				}
			}
			if tc.status < 500 && tc.header["Location"] == "" && body != tc.body {
				t.Errorf("body %q, want %q", body, tc.body)
			}
			if tc.status >= 500 && strings.Contains(body, "body") {
				t.Errorf("the script's body reached the client: %q", body)
			}
			if tc.wantLength != "" && resp.ContentLength != 5 {
				t.Errorf("Content-Length %d, want %s", resp.ContentLength, tc.wantLength)
			}
			if tc.logs != "" && !strings.Contains(f.logs.String(), tc.logs) {
				t.Errorf("log lacks %q:\n%s", tc.logs, f.logs)
			}
		})
	}
	t.Run("cookies", func(t *testing.T) {
		resp, _ := f.get(t, "/cgi-bin/respond.sh?cookies")
		if got := resp.Header.Values("Set-Cookie"); !slices.Equal(got, []string{"a=1", "b=2"}) {
			t.Errorf("Set-Cookie = %q, want both", got)
		}
	})
	t.Run("no content sniffing", func(t *testing.T) {
		resp, _ := f.get(t, "/cgi-bin/respond.sh?status-only")
		if ct, ok := resp.Header["Content-Type"]; ok {
			t.Errorf("Content-Type %q invented for a script that sent none", ct)
		}
	})
	t.Run("large body", func(t *testing.T) {
		resp, body := f.get(t, "/cgi-bin/respond.sh?big")
		if resp.StatusCode != 200 || len(body) != 2000*65 {
			t.Errorf("status %d, %d bytes, want 200 and %d", resp.StatusCode, len(body), 2000*65)
		}
	})
}

func TestHead(t *testing.T) {
	f := newFixture(t, setupOpts{})
	resp, body := f.do(t, mustRequest(t, "HEAD", f.srv.URL+"/cgi-bin/respond.sh?ok", nil))
	if resp.StatusCode != 200 || resp.Header.Get("X-Script") != "yes" || body != "" {
		t.Errorf("HEAD: status %d, X-Script %q, body %q", resp.StatusCode, resp.Header.Get("X-Script"), body)
	}
	status, _, rawBody := f.raw(t, "HEAD /cgi-bin/respond.sh?big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if status != 200 || rawBody != "" {
		t.Errorf("HEAD raw: status %d, %d body bytes", status, len(rawBody))
	}
}

func TestLocalRedirect(t *testing.T) {
	f := newFixture(t, setupOpts{})
	t.Run("served internally", func(t *testing.T) {
		resp, body := f.get(t, "/cgi-bin/respond.sh?local")
		if resp.StatusCode != 200 || body != "body" || resp.Header.Get("X-Script") != "yes" || resp.Header.Get("Location") != "" {
			t.Errorf("status %d, body %q, header %v", resp.StatusCode, body, resp.Header)
		}
	})
	t.Run("as GET with the new query", func(t *testing.T) {
		resp, body := f.do(t, mustRequest(t, "POST", f.srv.URL+"/cgi-bin/respond.sh?local-env", strings.NewReader("data")))
		env := parseEnv(body)
		if resp.StatusCode != 200 || env["REQUEST_METHOD"] != "GET" || env["QUERY_STRING"] != "redirected" || env["SCRIPT_NAME"] != "/cgi-bin/envc" {
			t.Errorf("status %d, env %v", resp.StatusCode, env)
		}
		if _, ok := env["CONTENT_LENGTH"]; ok {
			t.Errorf("CONTENT_LENGTH %q passed to the redirect target", env["CONTENT_LENGTH"])
		}
		if !strings.HasSuffix(body, "STDIN=") {
			t.Errorf("the original body reached the redirect target: %q", body[strings.Index(body, "STDIN="):])
		}
	})
	t.Run("loop stops", func(t *testing.T) {
		resp, _ := f.get(t, "/cgi-bin/respond.sh?local-loop")
		if resp.StatusCode != 500 || !strings.Contains(f.logs.String(), "too many local redirects") {
			t.Errorf("status %d, want 500 and a log line", resp.StatusCode)
		}
	})
	t.Run("through the server's routes", func(t *testing.T) {
		var got string
		g := newFixture(t, setupOpts{opts: func(o *Options) {
			o.Redirect = func(w http.ResponseWriter, r *http.Request) {
				got = r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery
				io.WriteString(w, "from the router")
			}
		}})
		_, body := g.get(t, "/cgi-bin/respond.sh?local")
		if got != "GET /cgi-bin/respond.sh?ok" || body != "from the router" {
			t.Errorf("Redirect saw %q, body %q", got, body)
		}
	})
}

func TestNPH(t *testing.T) {
	f := newFixture(t, setupOpts{})
	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /cgi-bin/nph-raw.sh HTTP/1.1\r\nHost: x\r\n\r\n")
	got, _ := io.ReadAll(conn)
	want := "HTTP/1.1 299 Raw Output\r\nX-Raw: yes\r\nContent-Length: 8\r\nConnection: close\r\n\r\nraw body"
	if string(got) != want {
		t.Errorf("nph output changed on the way:\ngot  %q\nwant %q", got, want)
	}
}

func TestStreaming(t *testing.T) {
	fifo := mkfifo(t)
	f := newFixture(t, setupOpts{opts: func(o *Options) { o.Env = map[string]string{"FIFO": fifo} }})
	resp, err := f.srv.Client().Get(f.srv.URL + "/cgi-bin/stream.sh")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 6)
	// The script waits for the FIFO before its second line: the first must arrive now.
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first\n" {
		t.Fatalf("first line: %q, %v", buf, err)
	}
	release(t, fifo)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "second\n" {
		t.Errorf("rest %q", rest)
	}
}

func TestStderrLogged(t *testing.T) {
	f := newFixture(t, setupOpts{})
	resp, body := f.get(t, "/cgi-bin/stderr.sh")
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("status %d, body %q", resp.StatusCode, body)
	}
	peertest.WaitFor(t, 5*time.Second, "the last stderr line logged", func() bool { return strings.Contains(f.logs.String(), "no newline at the end") })
	logs := f.logs.String()
	for _, want := range []string{`script=/cgi-bin/stderr.sh line="first complaint"`, `line="no newline at the end"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pids")
	f := newFixture(t, setupOpts{opts: func(o *Options) {
		o.Timeout = config.Duration(300 * time.Millisecond)
		o.Env = map[string]string{"PIDFILE": pidfile}
	}})
	resp, _ := f.get(t, "/cgi-bin/hang.sh")
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("status %d, want 504", resp.StatusCode)
	}
	var leader, child int
	fmt.Sscan(waitFile(t, pidfile), &leader, &child)
	// The leader ignores SIGTERM: it is gone only because SIGKILL followed, and
	// reaped because the handler answered after reaping.
	if !processGone(leader, false) {
		t.Errorf("script %d still exists after the 504", leader)
	}
	waitGone(t, child, true)
	if !strings.Contains(f.logs.String(), "timed out") {
		t.Errorf("no log line for the timeout:\n%s", f.logs)
	}
}

func TestClientDisconnectKillsScript(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pids")
	f := newFixture(t, setupOpts{opts: func(o *Options) { o.Env = map[string]string{"PIDFILE": pidfile} }})
	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "GET /cgi-bin/hang.sh HTTP/1.1\r\nHost: x\r\n\r\n")
	var leader, child int
	fmt.Sscan(waitFile(t, pidfile), &leader, &child)
	conn.Close()
	waitGone(t, leader, false)
	waitGone(t, child, true)
}

func TestNoZombies(t *testing.T) {
	f := newFixture(t, setupOpts{})
	var pids []int
	for range 20 {
		_, body := f.get(t, "/cgi-bin/pid.sh")
		pid, err := strconv.Atoi(body)
		if err != nil {
			t.Fatalf("body %q", body)
		}
		pids = append(pids, pid)
	}
	// A complete response goes out before its script is reaped (beside it), so
	// each is waited for: none may be left a zombie.
	for _, pid := range pids {
		waitGone(t, pid, false)
	}
}

func TestMaxProcesses(t *testing.T) {
	fifo := mkfifo(t)
	pidfile := filepath.Join(t.TempDir(), "pid")
	f := newFixture(t, setupOpts{opts: func(o *Options) {
		o.MaxProcesses = 1
		o.QueueTimeout = 50 * time.Millisecond
		o.Env = map[string]string{"FIFO": fifo, "PIDFILE": pidfile}
	}})
	var wg sync.WaitGroup
	var first int
	wg.Go(func() {
		resp, err := f.srv.Client().Get(f.srv.URL + "/cgi-bin/block.sh")
		if err == nil {
			first = resp.StatusCode
			resp.Body.Close()
		}
	})
	waitFile(t, pidfile) // the first script holds the only slot
	resp, _ := f.get(t, "/cgi-bin/respond.sh?ok")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second request: status %d, want 503 with Retry-After", resp.StatusCode)
	}
	release(t, fifo)
	wg.Wait()
	if first != 200 {
		t.Errorf("first request: status %d, want 200", first)
	}
	if resp, _ := f.get(t, "/cgi-bin/respond.sh?ok"); resp.StatusCode != 200 {
		t.Errorf("after release: status %d, want 200", resp.StatusCode)
	}
}

func TestShutdownKillsScripts(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pids")
	f := newFixture(t, setupOpts{opts: func(o *Options) { o.Env = map[string]string{"PIDFILE": pidfile} }})
	done := make(chan int, 1)
	go func() {
		resp, err := f.srv.Client().Get(f.srv.URL + "/cgi-bin/hang.sh")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	var leader, child int
	fmt.Sscan(waitFile(t, pidfile), &leader, &child)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := f.h.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if !processGone(leader, false) {
		t.Errorf("script %d survived shutdown", leader)
	}
	waitGone(t, child, true)
	if status := <-done; status != http.StatusServiceUnavailable {
		t.Errorf("in-flight request: status %d, want 503", status)
	}
	if resp, _ := f.get(t, "/cgi-bin/respond.sh?ok"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after shutdown: status %d, want 503", resp.StatusCode)
	}
}

// CVE-2021-41773 and CVE-2021-42013: no encoding of "..", no symlink and no NUL can
// reach anything outside the script directory; only executable files run.
func TestPathSafety(t *testing.T) {
	f := newFixture(t, setupOpts{})
	os.Symlink("/bin/sh", filepath.Join(f.dir, "out"))
	os.Symlink("../", filepath.Join(f.dir, "up"))
	os.Symlink("env.sh", filepath.Join(f.dir, "inside"))
	os.Mkdir(filepath.Join(f.dir, "withindex"), 0o755)
	os.Link(filepath.Join(f.dir, "pid.sh"), filepath.Join(f.dir, "withindex", "index.cgi"))
	tests := []struct {
		name, target string
		status       int
	}{
		{"encoded dot dot", "/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh", 400},
		{"fully encoded", "/cgi-bin/%2e%2e/%2e%2e/%2e%2e/bin/sh", 400},
		{"double encoded percent", "/cgi-bin/%%32%65%%32%65/%%32%65%%32%65/bin/sh", 400},
		{"decoded once only", "/cgi-bin/%252e%252e/%252e%252e/bin/sh", 404},
		{"plain dot dot", "/cgi-bin/../../../bin/sh", 400},
		{"encoded slash", "/cgi-bin/..%2f..%2f..%2fbin%2fsh", 400},
		{"dot segment", "/cgi-bin/./env.sh", 400},
		{"NUL", "/cgi-bin/env.sh%00.txt", 400},
		{"symlink out of the directory", "/cgi-bin/out", 403},
		{"symlink to the parent", "/cgi-bin/up/www", 403},
		{"symlink inside", "/cgi-bin/inside", 200},
		{"not executable", "/cgi-bin/noexec.sh", 403},
		{"hidden", "/cgi-bin/.hidden.sh", 404},
		{"directory", "/cgi-bin/sub", 301},
		{"directory without index", "/cgi-bin/sub/", 403},
		{"directory index", "/cgi-bin/withindex/", 200},
		{"nested script", "/cgi-bin/sub/nested.sh/info", 200},
		{"missing", "/cgi-bin/missing", 404},
		{"route root", "/cgi-bin/", 403},
		{"outside the route", "/elsewhere/env.sh", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := f.raw(t, "GET "+tc.target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if status != tc.status {
				t.Errorf("GET %s: status %d, want %d (%q)", tc.target, status, tc.status, body)
			}
			if strings.Contains(body, "should never run") {
				t.Errorf("GET %s ran a non-executable file", tc.target)
			}
		})
	}
	status, hdr, _ := f.raw(t, "GET /cgi-bin?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if status != 301 || hdr.Get("Location") != "/cgi-bin/?x=1" {
		t.Errorf("GET /cgi-bin: %d Location %q, want 301 to /cgi-bin/?x=1", status, hdr.Get("Location"))
	}
}

func TestSingleFileAndRouteKinds(t *testing.T) {
	dir := scriptDir(t)
	os.Link(filepath.Join(dir, "env.sh"), filepath.Join(dir, "page.cgi"))
	tests := []struct {
		name, path, route, url string
		scriptName, pathInfo   string
	}{
		{"file on a prefix", filepath.Join(dir, "envc"), "/app/", "/app/x/y?q", "/app", "/x/y"},
		{"file on a prefix, bare", filepath.Join(dir, "envc"), "/app/", "/app", "/app", ""},
		{"file on an exact path", filepath.Join(dir, "envc"), "/run", "/run", "/run", ""},
		{"file on a suffix", filepath.Join(dir, "envc"), "*.do", "/a/b.do/more", "/a/b.do", "/more"},
		{"directory on a suffix", dir, "*.cgi", "/page.cgi/more/info", "/page.cgi", "/more/info"},
		{"directory on the root", dir, "/", "/sub/nested.sh", "/sub/nested.sh", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(Options{Path: tc.path, Route: tc.route}, nil)
			if err != nil {
				t.Fatal(err)
			}
			tg, rerr := h.resolve(strings.SplitN(tc.url, "?", 2)[0])
			if rerr != nil {
				t.Fatalf("resolve %s: %v", tc.url, rerr)
			}
			if tg.scriptName != tc.scriptName || tg.pathInfo != tc.pathInfo {
				t.Errorf("SCRIPT_NAME %q PATH_INFO %q, want %q %q", tg.scriptName, tg.pathInfo, tc.scriptName, tc.pathInfo)
			}
			h.Shutdown(context.Background())
		})
	}
	t.Run("end to end", func(t *testing.T) {
		h, err := New(Options{Path: filepath.Join(dir, "envc"), Route: "/app/"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Shutdown(context.Background()) })
		rec := newRecorder()
		h.ServeHTTP(rec, mustRequest(t, "GET", "http://x/app/p/q", nil))
		env := parseEnv(rec.body.String())
		if env["SCRIPT_NAME"] != "/app" || env["PATH_INFO"] != "/p/q" {
			t.Errorf("env %v", env)
		}
	})
}

func TestNewErrors(t *testing.T) {
	dir := scriptDir(t)
	for _, tc := range []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "nope"), "no such file"},
		{"not executable", filepath.Join(dir, "noexec.sh"), "not executable"},
		{"empty", "", "no script path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Path: tc.path}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// recorder is a minimal ResponseWriter for calling the handler directly.
type recorder struct {
	hdr    http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder                        { return &recorder{hdr: http.Header{}} }
func (r *recorder) Header() http.Header             { return r.hdr }
func (r *recorder) Write(b []byte) (int, error)     { return r.body.Write(b) }
func (r *recorder) WriteHeader(status int)          { r.status = status }
func (r *recorder) reset()                          { clear(r.hdr); r.status = 0; r.body.Reset() }
func (r *recorder) Flush()                          {}
func (r *recorder) SetReadDeadline(time.Time) error { return nil }

func BenchmarkHello(b *testing.B) {
	dir := scriptDir(b)
	h, err := New(Options{Path: dir, Route: "/cgi-bin/"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Shutdown(context.Background()) })
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rec := newRecorder()
		req, _ := http.NewRequest("GET", "http://127.0.0.1/cgi-bin/hello", nil)
		req.RemoteAddr = "127.0.0.1:5555"
		for pb.Next() {
			rec.reset()
			h.ServeHTTP(rec, req)
			if rec.body.String() != "Hello, World!" {
				b.Fatalf("body %q", rec.body.String())
			}
		}
	})
}

// A script that sends its whole response and closes stdout but runs on must not hold
// the response back until it ends.
func TestResponseBeforeScriptEnds(t *testing.T) {
	f := newFixture(t, setupOpts{opts: func(o *Options) { o.Timeout = config.Duration(20 * time.Second) }})
	resp, err := f.srv.Client().Get(f.srv.URL + "/cgi-bin/linger.sh")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, body); err != nil || string(body) != "done" {
		t.Errorf("body %q, %v", body, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the script would run for 1000s: end it now
	f.h.Shutdown(ctx)
}

// Started as root, gantry runs scripts as the configured user, with that user's
// whole group list as initgroups(3) builds it (id(1) reports the same) and none
// of gantry's own groups; otherwise as itself.
func TestUser(t *testing.T) {
	idG := func(args ...string) string {
		out, err := exec.Command("id", append([]string{"-G"}, args...)...).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	for _, name := range []string{"nobody", peertest.GroupMember()} {
		t.Run(name, func(t *testing.T) {
			if name == "" {
				peertest.Missing(t, "a user with a supplementary group", "no user in /etc/group is a member of a group other than its own")
			}
			u, err := user.Lookup(name)
			if err != nil {
				peertest.Missing(t, "user "+name, err.Error())
			}
			f := newFixture(t, setupOpts{opts: func(o *Options) { o.User = name }})
			// The script must be reachable by the user it runs as.
			for d := f.dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
				os.Chmod(d, 0o755)
			}
			want := fmt.Sprintf("%d %d groups %s", os.Getuid(), os.Getgid(), idG())
			if os.Geteuid() == 0 {
				want = u.Uid + " " + u.Gid + " groups " + idG(name)
			}
			resp, body := f.get(t, "/cgi-bin/id.sh")
			if resp.StatusCode != 200 || body != want {
				t.Errorf("status %d, script ran as %q, want %q", resp.StatusCode, body, want)
			}
		})
	}
}

// Over HTTP/2 the connection cannot be handed to an nph- script: its status line
// and header are parsed and served like any script's.
func TestNPHOverHTTP2(t *testing.T) {
	f := newFixture(t, setupOpts{tls: true, http2: true})
	resp, body := f.get(t, "/cgi-bin/nph-raw.sh")
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
	}
	if resp.StatusCode != 299 || resp.Header.Get("X-Raw") != "yes" || body != "raw body" {
		t.Errorf("status %d, X-Raw %q, body %q", resp.StatusCode, resp.Header.Get("X-Raw"), body)
	}
}

// TestCompleteResponseNotHeldByExit checks that a script's response reaches the
// client whole as soon as the script closes its output, even while the script
// still runs; that it still counts against max_processes until it exits; and
// that it is reaped then (no zombie left).
func TestCompleteResponseNotHeldByExit(t *testing.T) {
	fifo := mkfifo(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	f := newFixture(t, setupOpts{opts: func(o *Options) {
		o.MaxProcesses = 1
		o.Env = map[string]string{"FIFO": fifo, "PIDFILE": pidFile}
	}})
	writeExec(t, filepath.Join(f.dir, "linger"), "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\ndone\\n'\necho $$ > \"$PIDFILE\"\nexec >&-\nread x < \"$FIFO\"\n")
	resp, body := f.get(t, "/cgi-bin/linger")
	if resp.StatusCode != 200 || body != "done\n" {
		t.Fatalf("GET = %d %q, want 200 \"done\\n\"", resp.StatusCode, body)
	}
	pid, _ := strconv.Atoi(waitFile(t, pidFile))
	if processGone(pid, false) {
		t.Fatalf("the script had exited before the response was read: the test shows nothing")
	}
	if resp, _ := f.get(t, "/cgi-bin/hello"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a second script while the first still runs with max_processes = 1: %d, want 503", resp.StatusCode)
	}
	release(t, fifo)
	waitGone(t, pid, false)
	peertest.WaitFor(t, 0, "the script's slot to be given back", func() bool {
		resp, _ := f.get(t, "/cgi-bin/hello")
		return resp.StatusCode == 200
	})
}

func writeExec(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
}

// A script that answered in full, closed stdout and stderr and runs on is reaped
// in the background; Shutdown must still wait for it and, past its deadline,
// terminate it, or gantry exits leaving it running, re-parented to init.
func TestShutdownTerminatesBackgroundReapedScript(t *testing.T) {
	fifo := mkfifo(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	f := newFixture(t, setupOpts{opts: func(o *Options) {
		o.Env = map[string]string{"FIFO": fifo, "PIDFILE": pidFile}
	}})
	writeExec(t, filepath.Join(f.dir, "detach"), "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\ndone\\n'\necho $$ > \"$PIDFILE\"\nexec >&- 2>&-\nread x < \"$FIFO\"\n")
	resp, body := f.get(t, "/cgi-bin/detach")
	if resp.StatusCode != 200 || body != "done\n" {
		t.Fatalf("GET = %d %q, want 200 \"done\\n\"", resp.StatusCode, body)
	}
	pid, _ := strconv.Atoi(waitFile(t, pidFile))
	t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) })
	if processGone(pid, false) {
		t.Fatalf("the script had exited before Shutdown: the test shows nothing")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	f.h.Shutdown(ctx)
	if !processGone(pid, false) {
		t.Errorf("script %d still running after Shutdown returned", pid)
	}
}

// A script started while another runs gets none of the other's descriptors:
// the pipes and the pidfd gantry holds for a running script are close-on-exec,
// whether or not its reaper has begun to wait on the pidfd.
func TestNoDescriptorsOfRunningScript(t *testing.T) {
	fifo := mkfifo(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	f := newFixture(t, setupOpts{opts: func(o *Options) {
		o.Env = map[string]string{"FIFO": fifo, "PIDFILE": pidFile}
	}})
	writeExec(t, filepath.Join(f.dir, "linger"), "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\ndone\\n'\necho $$ > \"$PIDFILE\"\nexec >&-\nread x < \"$FIFO\"\n")
	if resp, body := f.get(t, "/cgi-bin/linger"); resp.StatusCode != 200 || body != "done\n" {
		t.Fatalf("GET = %d %q, want 200 \"done\\n\"", resp.StatusCode, body)
	}
	pid, _ := strconv.Atoi(waitFile(t, pidFile))
	if processGone(pid, false) {
		t.Fatalf("the first script had exited before the second ran: the test shows nothing")
	}
	req := mustRequest(t, "POST", f.srv.URL+"/cgi-bin/envc", strings.NewReader("body"))
	if _, body := f.do(t, req); strings.Contains(body, "OPENFD=") || !strings.Contains(body, "STDIN=body") {
		t.Errorf("a script run beside another saw:\n%s", body)
	}
	release(t, fifo)
	waitGone(t, pid, false)
}
