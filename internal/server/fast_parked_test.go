package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gantry/internal/config"
	"gantry/internal/peertest"
)

// TestFastPathParkedGatewayEnv: keep-alive connections of the real server park
// between requests (ParkAfter's default) and, woken, hand a WSGI application
// exactly their own request: interleaved requests on several connections, each
// with its own query and header, come back as sent.
func TestFastPathParkedGatewayEnv(t *testing.T) {
	py := peertest.Python(t)
	app, err := os.ReadFile(filepath.Join("testdata", "gateway_app.py"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "gateway_app.py"), string(app))
	srv, base, _ := startServer(t, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n"+
		"[[site]]\nroot=%q\n  [[site.route]]\n  path=\"/\"\n  wsgi=\"gateway_app:application\"\n  python=%q\n  chdir=%q\n  processes=2\n",
		dir, py, dir))
	srv.mu.Lock()
	fast := srv.fast[0]
	srv.mu.Unlock()
	const conns, rounds = 6, 3
	cs := make([]net.Conn, conns)
	brs := make([]*bufio.Reader, conns)
	for i := range cs {
		c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(30 * time.Second))
		cs[i], brs[i] = c, bufio.NewReader(c)
	}
	for r := range rounds {
		for i, c := range cs {
			fmt.Fprintf(c, "GET /query?c=%d&r=%d HTTP/1.1\r\nHost: x\r\nX-Test: conn-%d-round-%d\r\n\r\n", i, r, i, r)
		}
		for i := range cs {
			resp, err := http.ReadResponse(brs[i], nil)
			if err != nil {
				t.Fatalf("connection %d round %d: %v", i, r, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("GET c=%d&r=%d conn-%d-round-%d", i, r, i, r); string(b) != want {
				t.Errorf("connection %d round %d: the application saw %q, want %q", i, r, b, want)
			}
		}
		peertest.WaitFor(t, 0, "every connection parked", func() bool { return fast.Parked() == conns })
	}
}

// TestFastPathReloadParked: a reload while a keep-alive connection is parked
// applies to its next request, answered on the fast path when it wakes.
func TestFastPathReloadParked(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(a, "x.txt"), "from a")
	writeFile(t, filepath.Join(b, "x.txt"), "from b")
	conf := "[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n[[site]]\nroot=%q\n"
	srv, base, file := startServer(t, fmt.Sprintf(conf, a))
	srv.mu.Lock()
	fast := srv.fast[0]
	srv.mu.Unlock()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	ask := func() string {
		t.Helper()
		io.WriteString(c, "GET /x.txt HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	if got := ask(); got != "from a" {
		t.Fatalf("before reload: %q", got)
	}
	peertest.WaitFor(t, 0, "the connection parked", func() bool { return fast.Parked() == 1 })
	writeFile(t, file, fmt.Sprintf(conf, b))
	if err := srv.Reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	before := srv.fastHits.Load()
	if got := ask(); got != "from b" {
		t.Fatalf("after reload: %q", got)
	}
	if n := srv.fastHits.Load() - before; n != 1 {
		t.Errorf("the answer after the reload came from the fast path %d times, want 1", n)
	}
}

// TestFastPathGateClosesParked: behind a gate (a ban list), a keep-alive
// connection the real server has parked keeps the connection the gate
// returned, so that the gate closing it (a ban of its source) closes it at
// once. Without a gate (TestFastPathParkedGatewayEnv) parked connections are
// released. The gate is a stand-in: a ban list never bans loopback.
func TestFastPathGateClosesParked(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "x.txt"), "x")
	cfg, err := config.Parse("gantry.toml", fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n[[site]]\nroot=%q\n", dir))
	if err != nil {
		t.Fatal(err)
	}
	gate := &recordingGate{}
	srv := serveWith(t, cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Gate: gate})
	srv.mu.Lock()
	fast := srv.fast[0]
	srv.mu.Unlock()
	c, err := net.Dial("tcp", srv.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /x.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	peertest.WaitFor(t, 0, "the connection parked", func() bool { return fast.Parked() == 1 })
	gate.mu.Lock()
	for _, gc := range gate.conns {
		gc.Close()
	}
	gate.mu.Unlock()
	if b, err := br.ReadByte(); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("parked connection closed by the gate: read %q, %v; want a close", b, err)
	}
}

// recordingGate admits every connection and keeps them, to close them as a
// ban would.
type recordingGate struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (g *recordingGate) Listener(ln net.Listener) net.Listener { return &recordingListener{ln, g} }
func (g *recordingGate) Admit(net.Addr) bool                   { return true }
func (g *recordingGate) Track(net.Addr, func()) func()         { return func() {} }

type recordingListener struct {
	net.Listener
	g *recordingGate
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.g.mu.Lock()
		l.g.conns = append(l.g.conns, c)
		l.g.mu.Unlock()
	}
	return c, err
}
