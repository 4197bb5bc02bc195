package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// An app behind the proxy may read "X-Auth.User" or "X_Auth_User" as the
// "X-Auth-User" a trusted proxy in front sets (PHP maps "." and "-" to "_");
// only letters, digits and "-" names may be forwarded.
func TestHeaderNamesThatMapOntoOthersNotForwarded(t *testing.T) {
	f := startFront(t, Options{Upstream: startUpstream(t, http.HandlerFunc(echoHandler)), Route: "/"})
	c := client(t)
	req, _ := http.NewRequest("GET", f.URL+"/whoami", nil)
	req.Header["X-Auth-User"] = []string{"alice"}
	req.Header["X-Auth.User"] = []string{"admin-dot"}
	req.Header["X_Auth_User"] = []string{"admin-underscore"}
	req.Header["X-Auth~User"] = []string{"admin-tilde"}
	s := getSeen(t, c, req)
	if got := s.Header.Get("X-Auth-User"); got != "alice" {
		t.Errorf("upstream got X-Auth-User %q, want alice", got)
	}
	for name, v := range s.Header {
		if strings.ContainsAny(name, "._~") || strings.Contains(strings.Join(v, ""), "admin") {
			t.Errorf("upstream got %s: %q", name, v)
		}
	}
}

// An h2c upgrade forwarded to the upstream would make the rest of the
// connection HTTP/2 that gantry relays without seeing (h2c smuggling past
// route and header rules); the request must reach the upstream as plain
// HTTP/1.1 with no Upgrade and no HTTP2-Settings, and the client gets the
// upstream's ordinary answer.
func TestH2CUpgradeNeverForwarded(t *testing.T) {
	f := startFront(t, Options{Upstream: startUpstream(t, http.HandlerFunc(echoHandler)), Route: "/"})
	tests := []struct{ name, conn, upgrade string }{
		{"settings named in Connection", "Upgrade, HTTP2-Settings", "h2c"},
		{"settings not named in Connection", "Upgrade", "h2c"},
		{"h2c among other protocols", "Upgrade", "websocket, h2c"},
		{"upper case", "upgrade", "H2C"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := rawRoundTrip(t, f.Addr, "GET /h2c HTTP/1.1\r\nHost: app.example\r\nConnection: "+tc.conn+
				"\r\nUpgrade: "+tc.upgrade+"\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"+
				"GET /after HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n")
			if st := statusLines(raw); len(st) != 2 || st[0] != "200 OK" || st[1] != "200 OK" {
				t.Fatalf("statuses %q, want two 200s; response:\n%s", st, raw)
			}
			body := raw[strings.Index(raw, "\r\n\r\n")+4:]
			var s seen
			if err := json.NewDecoder(strings.NewReader(body)).Decode(&s); err != nil {
				t.Fatalf("decoding %q: %v", body, err)
			}
			for _, name := range []string{"Upgrade", "Http2-Settings", "Connection"} {
				if v, ok := s.Header[name]; ok {
					t.Errorf("upstream got %s: %q", name, v)
				}
			}
		})
	}
}
