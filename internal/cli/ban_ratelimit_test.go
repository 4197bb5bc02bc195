package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gantry/internal/config"
	"gantry/internal/server"
)

// behindProxy starts gantry with [telescope.ban] keys ban and a site whose
// routes are routes, 127.0.0.1 a trusted proxy; it returns the bans and one
// connection from the proxy that GETs path for the client xff.
func behindProxy(t *testing.T, ban, routes string) (*extras, func(path, xff string) int) {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gantry.toml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`[server]
listen = ["127.0.0.1:0"]
access_log = "off"

[admin]
listen = "off"

[telescope.ban]
enabled = true
file = "off"
%s

[[site]]
root = %q
%s
`, ban, dir, routes)), 0o644)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	srv, e := serveExtras(t, cfg, log)
	c, err := net.DialTimeout("tcp", srv.Addrs()[0].String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	br := bufio.NewReader(c)
	return e, func(path, xff string) int {
		t.Helper()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: %s\r\n\r\n", path, xff)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
}

// The sensor's and the rate limit's counts are kept by TCP peer: what they
// find of a trusted proxy (one address, many clients) says nothing of the
// client a request was forwarded for, so an innocent client whose requests
// land on the proxy's exhausted bucket, or after its burst of 404s, must not
// be banned for it. (The observers run in the request's goroutine, before the
// connection's next request is read: one more answer means the last one was
// seen.)

// TestRateLimitBehindProxyBansNoClient: 429s of the proxy's bucket.
func TestRateLimitBehindProxyBansNoClient(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app\n") }))
	t.Cleanup(backend.Close)
	e, get := behindProxy(t, "rate_limited = 3", fmt.Sprintf(`
  [[site.route]]
  path = "/"
  proxy = %q
  trusted_proxies = ["127.0.0.1"]
  rate = "1r/m"
  burst = 1
`, backend.URL))
	// the flooder takes the proxy's one request
	if code := get("/", "203.0.113.66"); code != 200 {
		t.Fatalf("first request: %d", code)
	}
	// the innocent client's requests find the proxy's bucket empty
	for i := range 5 {
		if code := get("/", "198.51.100.20"); code != http.StatusTooManyRequests {
			t.Fatalf("request %d: %d, want 429 (the proxy's bucket is empty)", i, code)
		}
	}
	get("/", "198.51.100.20")
	if e.bans.Banned(netip.MustParseAddr("198.51.100.20")) {
		bans, _ := e.bans.Snapshot(0)
		t.Fatalf("a client behind the proxy was banned for the proxy's rate limit: %+v", bans)
	}
}

// TestBurstBehindProxyBansNoClient: 404s after the proxy's burst of them.
func TestBurstBehindProxyBansNoClient(t *testing.T) {
	backend := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(backend.Close)
	e, get := behindProxy(t, "scanner_hits = 3", fmt.Sprintf(`
  [[site.route]]
  path = "/"
  proxy = %q
  trusted_proxies = ["127.0.0.1"]
`, backend.URL))
	// many clients' missing pages: the proxy has its burst of distinct 404s
	for i := range 12 {
		get(fmt.Sprintf("/missing-%d", i), fmt.Sprintf("203.0.113.%d", 100+i))
	}
	// a client with a broken link, reloading
	for range 5 {
		if code := get("/favicon.ico", "198.51.100.20"); code != http.StatusNotFound {
			t.Fatalf("the innocent client's request: %d, want 404", code)
		}
	}
	get("/", "198.51.100.21")
	if e.bans.Banned(netip.MustParseAddr("198.51.100.20")) {
		bans, _ := e.bans.Snapshot(0)
		t.Fatalf("a client behind the proxy was banned for the proxy's 404 burst: %+v", bans)
	}
}

// serveExtras serves cfg with what gantry serve adds to the server (bans,
// telescope, exports), as the command does, until the test ends.
func serveExtras(t *testing.T, cfg *config.Config, log *slog.Logger) (*server.Server, *extras) {
	t.Helper()
	ctx := context.Background()
	e, err := newExtras(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(ctx, cfg, server.Options{Logger: log, Version: "test", WrapListener: e.wrapListener,
		Gate: e.gate(), AdminSocket: "off", BeforeBuild: func(s *server.Server) error { return e.start(ctx, s) }})
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		e.close()
	})
	return srv, e
}
