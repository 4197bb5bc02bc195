package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// wsUpstream answers a WebSocket-style upgrade, sends "hello\n", then echoes
// every line back in upper case. It checks the headers a proxy must forward.
func wsUpstream(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") ||
			!strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") ||
			r.Header.Get("Sec-WebSocket-Key") == "" || r.Header.Get("X-Forwarded-For") == "" {
			http.Error(w, "not an upgrade: "+r.Header.Get("Connection")+" "+r.Header.Get("Upgrade"), http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("upstream hijack: %v", err)
			return
		}
		defer conn.Close()
		io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nhello\n")
		brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			io.WriteString(brw, strings.ToUpper(line))
			brw.Flush()
		}
	})
}

const upgradeRequest = "GET /ws HTTP/1.1\r\nHost: app.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// dialUpgrade performs the handshake through the proxy and returns the
// switched connection. extra is sent in the same write as the request.
func dialUpgrade(t *testing.T, addr, extra string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, upgradeRequest+extra); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("status %d: %s", res.StatusCode, b)
	}
	if res.Header.Get("Sec-WebSocket-Accept") == "" || !strings.EqualFold(res.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("101 without the upstream's upgrade headers: %v", res.Header)
	}
	return c, br
}

func expectLine(t *testing.T, br *bufio.Reader, want string) {
	t.Helper()
	got, err := br.ReadString('\n')
	if err != nil || got != want {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
}

func TestWebSocketPassesThrough(t *testing.T) {
	tests := []struct {
		name     string
		upstream func(t *testing.T) string
	}{
		{"tcp upstream", func(t *testing.T) string { return startUpstream(t, wsUpstream(t)) }},
		{"unix socket upstream", func(t *testing.T) string { return startUnixUpstream(t, wsUpstream(t)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFront(t, Options{Upstream: tc.upstream(t), Route: "/"})
			c, br := dialUpgrade(t, f.Addr, "")
			expectLine(t, br, "hello\n") // upstream -> client
			for _, msg := range []string{"ping\n", "second message\n"} {
				io.WriteString(c, msg) // client -> upstream -> client
				expectLine(t, br, strings.ToUpper(msg))
			}
		})
	}
}

// Bytes a client sends right behind its upgrade request land in the
// server's read buffer; they must reach the upstream too.
func TestWebSocketEarlyBytesNotLost(t *testing.T) {
	f := startFront(t, Options{Upstream: startUpstream(t, wsUpstream(t)), Route: "/"})
	_, br := dialUpgrade(t, f.Addr, "early\n")
	expectLine(t, br, "hello\n")
	expectLine(t, br, "EARLY\n")
}

// The front server's read and write timeouts are for one request; an open
// WebSocket must outlive them (net/http clears them on Hijack; this keeps
// that promise checked for the proxy's path).
func TestWebSocketOutlivesServerTimeouts(t *testing.T) {
	const limit = 200 * time.Millisecond
	f := startFrontWith(t, Options{Upstream: startUpstream(t, wsUpstream(t)), Route: "/"}, func(s *http.Server) {
		s.ReadTimeout, s.WriteTimeout = limit, limit
	})
	c, br := dialUpgrade(t, f.Addr, "")
	expectLine(t, br, "hello\n")
	// Not waiting for readiness: the point is to let the server's deadlines pass.
	time.Sleep(2 * limit)
	io.WriteString(c, "still here\n")
	expectLine(t, br, "STILL HERE\n")
}

func TestShutdownWaitsForThenClosesUpgradedConnections(t *testing.T) {
	f := startFront(t, Options{Upstream: startUpstream(t, wsUpstream(t)), Route: "/"})
	if err := f.H.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown with nothing upgraded: %v", err)
	}

	// Graceful: Shutdown returns once the client ends its WebSocket.
	c1, br1 := dialUpgrade(t, f.Addr, "")
	expectLine(t, br1, "hello\n")
	done := make(chan error, 1)
	go func() { done <- f.H.Shutdown(context.Background()) }()
	io.WriteString(c1, "during shutdown\n")
	expectLine(t, br1, "DURING SHUTDOWN\n")
	c1.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown after the client left: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after the last upgraded connection closed")
	}

	// Forced: when the context ends first, the connection is closed.
	_, br2 := dialUpgrade(t, f.Addr, "")
	expectLine(t, br2, "hello\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.H.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown with an open WebSocket and a done context: %v", err)
	}
	if _, err := br2.ReadString('\n'); err == nil {
		t.Error("upgraded connection still open after a forced Shutdown")
	}
	if !strings.Contains(f.Log.String(), "closed upgraded connections") {
		t.Errorf("no log line for the forced close:\n%s", f.Log.String())
	}
}

func TestUpgradeRefusedByUpstream(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no websockets here", http.StatusForbidden)
	}))
	f := startFront(t, Options{Upstream: up, Route: "/"})
	out := rawRoundTrip(t, f.Addr, strings.Replace(upgradeRequest, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1))
	if s := statusLines(out); len(s) != 1 || !strings.HasPrefix(s[0], "403 ") {
		t.Errorf("status lines %q, want one 403", s)
	}
}
