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

// TestRateLimitBehindProxyBansNoClient: the rate limit counts a trusted
// proxy's requests as one client's (its TCP address), so a 429 the proxy gets
// because some client behind it flooded says nothing of the client it was
// forwarded for. An innocent client whose requests land on the exhausted
// bucket must not be banned for it, nor must the flooder be banned under
// another client's name.
func TestRateLimitBehindProxyBansNoClient(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app\n") }))
	t.Cleanup(backend.Close)
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
rate_limited = 3

[[site]]
root = %q

  [[site.route]]
  path = "/"
  proxy = %q
  trusted_proxies = ["127.0.0.1"]
  rate = "1r/m"
  burst = 1
`, dir, backend.URL)), 0o644)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
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
	c, err := net.DialTimeout("tcp", srv.Addrs()[0].String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	br := bufio.NewReader(c)
	get := func(xff string) int {
		t.Helper()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: %s\r\n\r\n", xff)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// the flooder takes the proxy's one request
	if code := get("203.0.113.66"); code != 200 {
		t.Fatalf("first request: %d", code)
	}
	// the innocent client's requests find the proxy's bucket empty
	for i := range 5 {
		if code := get("198.51.100.20"); code != http.StatusTooManyRequests {
			t.Fatalf("request %d: %d, want 429 (the proxy's bucket is empty)", i, code)
		}
	}
	// the observers run in the request's goroutine, before the connection's
	// next request is read: one more answer means the last 429 was seen
	get("198.51.100.20")
	if e.bans.Banned(netip.MustParseAddr("198.51.100.20")) {
		bans, _ := e.bans.Snapshot(0)
		t.Fatalf("a client behind the proxy was banned for the proxy's rate limit: %+v", bans)
	}
}
