package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/internal/config"
)

// syncBuffer is a log sink the test reads while gantry writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBanBehindTrustedProxy: 127.0.0.1 is a trusted proxy; a client it
// forwards for is banned by its X-Forwarded-For address and then answered 403
// per request on the proxy's connection, which stays open for other clients,
// while the backend never sees the banned client's requests. 127.0.0.2 is not
// trusted: its X-Forwarded-For bans no one and lifts no ban.
func TestBanBehindTrustedProxy(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_path=%v", fast), func(t *testing.T) { testBanBehindProxy(t, fast) })
	}
}

func testBanBehindProxy(t *testing.T, fast bool) {
	var mu sync.Mutex
	var seen []string // the X-Forwarded-For of every request the backend got
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Forwarded-For"))
		mu.Unlock()
		io.WriteString(w, "app\n")
	}))
	t.Cleanup(backend.Close)
	backendSaw := func(client string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, s := range seen {
			if strings.Contains(s, client) {
				n++
			}
		}
		return n
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello\n"), 0o644)
	cfgPath := filepath.Join(dir, "gantry.toml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`[server]
listen = ["127.0.0.1:0"]
access_log = "off"
fast_path = %v

[admin]
listen = "off"

[telescope.ban]
enabled = true
file = "off"

[[site]]
root = %q

  [[site.route]]
  path = "/app/"
  proxy = %q
  trusted_proxies = ["127.0.0.1"]

  [[site.route]]
  path = "/"
  static = %q
`, fast, dir, backend.URL, dir)), 0o644)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	srv, e := serveExtras(t, cfg, log)
	web := srv.Addrs()[0].String()

	// conn is one keep-alive connection from a local address.
	type conn struct {
		c  net.Conn
		br *bufio.Reader
	}
	dial := func(from string) *conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", web)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return &conn{c, bufio.NewReader(c)}
	}
	get := func(c *conn, path, xff string) int {
		t.Helper()
		c.c.SetDeadline(time.Now().Add(10 * time.Second))
		req := "GET " + path + " HTTP/1.1\r\nHost: example.com\r\n"
		if xff != "" {
			req += "X-Forwarded-For: " + xff + "\r\n"
		}
		if _, err := io.WriteString(c.c, req+"\r\n"); err != nil {
			t.Fatalf("GET %s for %q: %v", path, xff, err)
		}
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatalf("GET %s for %q: %v", path, xff, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Close {
			t.Fatalf("GET %s for %q: the connection is to be closed", path, xff)
		}
		return resp.StatusCode
	}
	banned := func(a string) bool { return e.bans.Banned(netip.MustParseAddr(a)) }

	proxyConn := dial("127.0.0.1")
	spoofer := dial("127.0.0.2")

	// the untrusted peer's header names nobody: its exploit bans no one
	get(spoofer, "/.env", "203.0.113.9")
	if banned("203.0.113.9") {
		t.Fatal("an untrusted peer's X-Forwarded-For got its address banned")
	}

	// the trusted proxy forwards an exploit from 203.0.113.7, appended after
	// what the client wrote (a spoofed 198.51.100.50)
	if code := get(proxyConn, "/app/x", "198.51.100.50, 203.0.113.7"); code != 200 {
		t.Fatalf("before the probe: %d", code)
	}
	get(proxyConn, "/.env", "198.51.100.50, 203.0.113.7")
	if !banned("203.0.113.7") || banned("198.51.100.50") || banned("127.0.0.1") {
		bans, _ := e.bans.Snapshot(0)
		t.Fatalf("after the probe through the proxy, bans %+v", bans)
	}

	// a fresh proxy connection whose requests all are static ones (the
	// HTTP/1.1 fast path keeps such a connection to itself)
	// (warmed first: the fast path answers from the static cache)
	warm := dial("127.0.0.1")
	get(warm, "/index.html", "")
	get(warm, "/index.html", "")
	fresh := dial("127.0.0.1")
	for range 2 {
		if code := get(fresh, "/index.html", "203.0.113.7"); code != http.StatusForbidden {
			t.Fatalf("banned client through the proxy, fresh connection: %d, want 403", code)
		}
		if code := get(fresh, "/index.html", "198.51.100.9"); code != 200 {
			t.Fatalf("another client through the proxy, fresh connection: %d", code)
		}
	}

	// on the same connection: the banned client gets 403 on every route, the
	// backend never hears of it, another client is served
	for _, path := range []string{"/", "/index.html", "/app/y"} {
		if code := get(proxyConn, path, "203.0.113.7"); code != http.StatusForbidden {
			t.Fatalf("banned client through the proxy, %s: %d, want 403", path, code)
		}
	}
	if code := get(proxyConn, "/app/y", "::ffff:203.0.113.7"); code != http.StatusForbidden {
		t.Fatalf("banned client as an IPv4-mapped address: %d, want 403", code)
	}
	if n := backendSaw("203.0.113.7"); n != 1 {
		t.Fatalf("the backend got %d requests of the banned client, want the 1 before the ban", n)
	}
	for _, path := range []string{"/", "/app/z"} {
		if code := get(proxyConn, path, "198.51.100.8"); code != 200 {
			t.Fatalf("another client through the proxy, %s: %d", path, code)
		}
	}
	if backendSaw("198.51.100.8") != 1 {
		t.Fatal("the backend did not get the other client's request")
	}
	// the untrusted peer naming the banned client is served: its header is ignored
	if code := get(spoofer, "/", "203.0.113.7"); code != 200 {
		t.Fatalf("untrusted peer naming a banned client: %d", code)
	}
	if l := logs.String(); !strings.Contains(l, `msg="request refused: forwarded for a banned client" component=ban client=203.0.113.7 ban=203.0.113.7/32 rule=exploit`) {
		t.Fatalf("no log line naming the ban:\n%s", l)
	}
	if _, st := e.bans.Snapshot(0); st.RefusedRequests != 6 || st.Refused != 0 {
		t.Fatalf("refused requests %d (want 6), connections %d (want 0)", st.RefusedRequests, st.Refused)
	}
}
