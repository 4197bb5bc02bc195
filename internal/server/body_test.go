package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// bodyServer runs every gateway twice, spooling (/cgi-bin/, *.php, /py/) and with
// request_buffering = false (/s/...), each with one worker, and max_body = 3MB.
type bodyServer struct {
	srv  *Server
	base string
	temp string // body_temp
}

const bodyMax = 3 << 20

func startBodyServer(t *testing.T) *bodyServer {
	t.Helper()
	perl := peertest.Binary(t, "perl")
	php := peertest.Binary(t, "php-cgi")
	py := peertest.Python(t)
	dir := t.TempDir()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", "body", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	www, cgiDir, app := filepath.Join(dir, "www"), filepath.Join(dir, "cgi-bin"), filepath.Join(dir, "app")
	writeFile(t, filepath.Join(www, "sum.php"), read("sum.php"))
	writeFile(t, filepath.Join(www, "s", "sum.php"), read("sum.php"))
	writeFile(t, filepath.Join(cgiDir, "sum.pl"), "#!"+perl+"\n"+read("sum.pl"))
	if err := os.Chmod(filepath.Join(cgiDir, "sum.pl"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(app, "bodyapp.py"), read("bodyapp.py"))
	temp := filepath.Join(dir, "body")
	var routes strings.Builder
	for _, prefix := range []string{"", "/s"} {
		opt := ""
		if prefix != "" {
			opt = "  request_buffering = false\n"
		}
		fmt.Fprintf(&routes, "  [[site.route]]\n  path = %q\n  cgi = %q\n%s", prefix+"/cgi-bin/", cgiDir, opt)
		fmt.Fprintf(&routes, "  [[site.route]]\n  path = %q\n  fastcgi_command = [%q]\n  processes = 1\n%s", prefix+"/*.php", php, opt)
		fmt.Fprintf(&routes, "  [[site.route]]\n  path = %q\n  wsgi = \"bodyapp:application\"\n  python = %q\n  chdir = %q\n  processes = 1\n  threads = 1\n%s",
			prefix+"/py/", py, app, opt)
	}
	conf := fmt.Sprintf("[server]\nlisten = [\"127.0.0.1:0\"]\naccess_log = \"off\"\nmax_body = \"3MB\"\nbody_temp = %q\n[admin]\nlisten = \"off\"\n[[site]]\nroot = %q\n%s",
		temp, www, strings.Replace(routes.String(), "  path = \"/*.php\"", "  path = \"*.php\"", 1))
	srv, base, _ := startServer(t, conf)
	return &bodyServer{srv: srv, base: base, temp: temp}
}

// bodySeen is what a backend reported of the body it got.
type bodySeen map[string]string

func parseSeen(s string) bodySeen {
	m := bodySeen{}
	for line := range strings.Lines(s) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			m[k] = v
		}
	}
	return m
}

func (b *bodyServer) post(t *testing.T, path string, body []byte, chunked bool) (int, bodySeen) {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = struct{ io.Reader }{r} // hides the length: net/http sends it chunked
	}
	req, err := http.NewRequest("POST", b.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	c := &http.Client{Timeout: 60 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, parseSeen(string(out))
}

func randomBody(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkSeen requires the backend to have read body byte for byte with
// CONTENT_LENGTH = wantCL.
func checkSeen(t *testing.T, got bodySeen, body []byte, wantCL string) {
	t.Helper()
	if got["len"] != strconv.Itoa(len(body)) || got["sha256"] != sum(body) {
		t.Errorf("backend read %s bytes (sha256 %.12s), want %d (%.12s)", got["len"], got["sha256"], len(body), sum(body))
	}
	if got["content_length"] != wantCL {
		t.Errorf("backend saw CONTENT_LENGTH %q, want %q", got["content_length"], wantCL)
	}
}

// spoolFDs counts this process's descriptors open on files in dir.
func spoolFDs(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		peertest.Missing(t, "/proc/self/fd", err.Error())
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, dir+"/") {
			n++
		}
	}
	return n
}

// Every gateway gets every body byte for byte with its real CONTENT_LENGTH, whether
// the client sent a Content-Length or chunks.
func TestGatewayBodies(t *testing.T) {
	b := startBodyServer(t)
	gateways := map[string]string{"cgi": "/cgi-bin/sum.pl", "php": "/sum.php", "wsgi": "/py/sum"}
	for _, size := range []int{70 << 10, 2 << 20, bodyMax} {
		body := randomBody(size)
		for _, gw := range []string{"cgi", "php", "wsgi"} {
			for _, chunked := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s %dKB chunked=%v", gw, size>>10, chunked), func(t *testing.T) {
					status, got := b.post(t, gateways[gw], body, chunked)
					if status != 200 {
						t.Fatalf("status %d", status)
					}
					checkSeen(t, got, body, strconv.Itoa(size))
				})
			}
		}
	}
}

// With request_buffering = false a body streams to the worker; a chunked one still
// reaches the application whole: CGI and FastCGI get it spooled (they need
// CONTENT_LENGTH), a WSGI app reads it to its end (wsgi.input_terminated).
func TestGatewayBodiesStreamed(t *testing.T) {
	b := startBodyServer(t)
	body := randomBody(2 << 20)
	tests := []struct {
		name, path string
		chunked    bool
		wantCL     string
	}{
		{"cgi with length", "/s/cgi-bin/sum.pl", false, "2097152"},
		{"cgi chunked", "/s/cgi-bin/sum.pl", true, "2097152"},
		{"php with length", "/s/sum.php", false, "2097152"},
		{"php chunked", "/s/sum.php", true, "2097152"},
		{"wsgi with length", "/s/py/sum", false, "2097152"},
		{"wsgi chunked", "/s/py/sum", true, "unset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, got := b.post(t, tt.path, body, tt.chunked)
			if status != 200 {
				t.Fatalf("status %d", status)
			}
			checkSeen(t, got, body, tt.wantCL)
			if strings.Contains(tt.path, "/py/") && got["input_terminated"] != "True" {
				t.Errorf("wsgi.input_terminated = %q, want True", got["input_terminated"])
			}
		})
	}
}

// slowPost sends a POST whose body trickles in a byte at a time until finish is
// closed, then the rest at once; the response's first line goes to done.
func slowPost(t *testing.T, base, path string, body []byte, finish <-chan struct{}, done chan<- string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", path, len(body))
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		sent := 0
	trickle:
		for sent < len(body)-1 {
			select {
			case <-finish:
				break trickle
			case <-tick.C:
				if _, err := c.Write(body[sent : sent+1]); err != nil {
					done <- "write: " + err.Error()
					return
				}
				sent++
			}
		}
		<-finish
		c.Write(body[sent:])
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			done <- "read: " + err.Error()
			return
		}
		out, _ := io.ReadAll(resp.Body)
		got := parseSeen(string(out))
		done <- fmt.Sprintf("%d len=%s sha256=%s", resp.StatusCode, got["len"], got["sha256"])
	}()
}

// Clients that send their bodies slowly hold a goroutine and a file each, never the
// one PHP process or the one WSGI worker: a probe GET and a fast POST are answered
// while the slow bodies are still arriving.
func TestSlowBodiesHoldNoWorker(t *testing.T) {
	b := startBodyServer(t)
	slowBody := randomBody(100 << 10) // past the memory threshold: a file from the start
	finish := make(chan struct{})
	done := make(chan string, 4)
	const slow = 4
	for i := range slow {
		path := []string{"/sum.php", "/py/sum"}[i%2]
		slowPost(t, b.base, path, slowBody, finish, done)
	}
	peertest.WaitFor(t, 0, "the slow bodies to be spooling", func() bool { return spoolFDs(t, b.temp) == slow })

	fast := randomBody(200 << 10)
	for _, path := range []string{"/sum.php", "/py/sum"} {
		status, got := b.post(t, path, nil, false)
		if status != 200 || got["len"] != "0" {
			t.Errorf("probe %s while slow bodies arrive: %d %v", path, status, got)
		}
		status, got = b.post(t, path, fast, false)
		if status != 200 {
			t.Fatalf("fast POST %s while slow bodies arrive: %d", path, status)
		}
		checkSeen(t, got, fast, strconv.Itoa(len(fast)))
	}
	select {
	case r := <-done:
		t.Fatalf("a slow request ended before its body did: %s", r)
	default:
	}
	close(finish)
	want := fmt.Sprintf("200 len=%d sha256=%s", len(slowBody), sum(slowBody))
	for range slow {
		if r := <-done; r != want {
			t.Errorf("slow request: %q, want %q", r, want)
		}
	}
}

// rawConn sends raw bytes and returns the connection.
func rawConn(t *testing.T, base, raw string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return c
}

// Spooled bodies leave no file and no descriptor behind, whatever becomes of the
// request; max_body is enforced without reading what lies past it.
func TestSpoolCleanup(t *testing.T) {
	b := startBodyServer(t)
	big := randomBody(2 << 20)
	// Every gateway connection the cases use is opened now, so the descriptors
	// counted before are those that stay.
	for _, p := range []string{"/cgi-bin/sum.pl", "/sum.php", "/py/sum"} {
		if status, _ := b.post(t, p, big, true); status != 200 {
			t.Fatalf("warm-up %s: %d", p, status)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	fdsBefore := peertest.OpenFDs(t)

	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"success", func(t *testing.T) {
			if status, got := b.post(t, "/sum.php", big, true); status != 200 || got["len"] != strconv.Itoa(len(big)) {
				t.Errorf("%d %v", status, got)
			}
		}},
		{"application error", func(t *testing.T) {
			if status, _ := b.post(t, "/py/raise", big, true); status != 500 {
				t.Errorf("status %d, want 500", status)
			}
		}},
		{"worker crash", func(t *testing.T) {
			if status, _ := b.post(t, "/py/crash", big, false); status != 502 {
				t.Errorf("status %d, want 502", status)
			}
		}},
		{"client gone mid-body", func(t *testing.T) {
			c := rawConn(t, b.base, "POST /sum.php HTTP/1.1\r\nHost: a\r\nContent-Length: 500000\r\n\r\n"+string(big[:100000]))
			peertest.WaitFor(t, 0, "the body to be spooling", func() bool { return spoolFDs(t, b.temp) == 1 })
			c.Close()
		}},
		{"declared length over max_body: 413 before reading", func(t *testing.T) {
			// No body byte is sent: the answer cannot wait for one.
			c := rawConn(t, b.base, fmt.Sprintf("POST /py/sum HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", bodyMax+1))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || resp.StatusCode != 413 || !resp.Close {
				t.Fatalf("%v %v, want 413 and the connection closed", resp, err)
			}
		}},
		{"chunked body crossing max_body: 413 at once, connection closed", func(t *testing.T) {
			// One byte past the limit and no end of body: the answer comes anyway.
			over := bodyMax + 1
			c := rawConn(t, b.base, fmt.Sprintf("POST /cgi-bin/sum.pl HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n", over))
			go c.Write(bytes.Repeat([]byte("x"), over))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 413 {
				t.Fatalf("%v %v, want 413", resp, err)
			}
			io.Copy(io.Discard, resp.Body)
			// The server reads nothing more: not even the end of the body it lacks.
			if _, err := br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("connection not closed after the 413: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t)
			peertest.WaitFor(t, 0, "spooled bodies to be closed", func() bool { return spoolFDs(t, b.temp) == 0 })
			if n := peertest.Entries(t, b.temp); n != 0 {
				t.Errorf("%d files left in body_temp", n)
			}
		})
	}
	http.DefaultClient.CloseIdleConnections()
	peertest.WaitFor(t, 0, fmt.Sprintf("descriptors back to %d", fdsBefore), func() bool { return peertest.OpenFDs(t) <= fdsBefore })
}

// A body still arriving when the server shuts down is dropped with its file.
func TestSpoolCleanupOnShutdown(t *testing.T) {
	dir := t.TempDir()
	temp := filepath.Join(dir, "body")
	srv, base, _ := startServer(t, fmt.Sprintf("[server]\nlisten = [\"127.0.0.1:0\"]\naccess_log = \"off\"\nbody_temp = %q\n[admin]\nlisten = \"off\"\n[[site]]\nroot = %q\n  [[site.route]]\n  path = \"/cgi-bin/\"\n  cgi = %q\n",
		temp, dir, dir))
	rawConn(t, base, "POST /cgi-bin/x HTTP/1.1\r\nHost: a\r\nContent-Length: 500000\r\n\r\nsome")
	peertest.WaitFor(t, 0, "the body to be spooling", func() bool { return spoolFDs(t, temp) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	srv.Shutdown(ctx) // the slow client outlives the grace period: its connection is closed
	peertest.WaitFor(t, 0, "the spooled body to be closed", func() bool { return spoolFDs(t, temp) == 0 })
	if n := peertest.Entries(t, temp); n != 0 {
		t.Errorf("%d files left in body_temp", n)
	}
}

// TestSpoolBudgetAnswers503: a body that would take the bodies spooled at once
// past body_temp_max (here this client's quarter of 1MB) is refused with 503 and
// Retry-After, never stored; a smaller one, in a file too, still goes through.
func TestSpoolBudgetAnswers503(t *testing.T) {
	dir := t.TempDir()
	cgiDir := filepath.Join(dir, "cgi-bin")
	writeFile(t, filepath.Join(cgiDir, "len.sh"), "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nwc -c\n")
	if err := os.Chmod(filepath.Join(cgiDir, "len.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, base, _ := startServer(t, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\nbody_temp=%q\nbody_temp_max=\"1MB\"\n[admin]\nlisten=\"off\"\n"+
		"[[site]]\n  [[site.route]]\n  path=\"/cgi-bin/\"\n  cgi=%q\n", filepath.Join(dir, "body"), cgiDir))
	post := func(n int) *http.Response {
		resp, err := http.Post(base+"/cgi-bin/len.sh", "application/octet-stream", bytes.NewReader(make([]byte, n)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := post(300 << 10); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a 300KB body past a 256KB share: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := post(200 << 10); resp.StatusCode != 200 {
		t.Errorf("a 200KB body: %d, want 200", resp.StatusCode)
	}
}
