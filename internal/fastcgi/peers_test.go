package fastcgi

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// wwwRoot is the test document root.
func wwwRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("testdata/www")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// serve builds a handler and an HTTP server on 127.0.0.1:0 around it.
func serve(t *testing.T, opts Options, wrap func(http.Handler) http.Handler) (*httptest.Server, *Handler, *peertest.LogBuffer) {
	t.Helper()
	logs := &peertest.LogBuffer{}
	if opts.Root == "" {
		opts.Root = wwwRoot(t)
	}
	if opts.Route == "" {
		opts.Route = "/"
	}
	h, err := New(opts, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	var hh http.Handler = h
	if wrap != nil {
		hh = wrap(h)
	}
	srv := httptest.NewServer(hh)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv, h, logs
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return resp, string(b)
}

// rawRequest sends req as is (for paths net/http would normalize or refuse) and
// returns the status and body.
func rawRequest(t *testing.T, srvURL, req string) (int, string) {
	t.Helper()
	status, body, _ := rawRequestLoc(t, srvURL, req)
	return status, body
}

// rawRequestLoc is rawRequest that also returns the Location header.
func rawRequestLoc(t *testing.T, srvURL, req string) (int, string, string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(srvURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, req)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

func parseEnv(body string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// countingProxy sits between gantry and a unix socket and counts the connections
// gantry opens.
type countingProxy struct {
	addr  string
	conns atomic.Int64
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	network, taddr, err := parseAddress(target)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "proxy.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{addr: "unix:" + sock}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.conns.Add(1)
			up, err := net.Dial(network, taddr)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}
