package ban

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// peer is a node's GET /api/bans as a test controls it: a hostile peer cannot
// be a real gantry, which refuses to ban what these send.
type peer struct {
	mu   sync.Mutex
	body string
	auth string // the Authorization it got last
}

func (p *peer) set(body string) { p.mu.Lock(); p.body = body; p.mu.Unlock() }

func (p *peer) serve(t *testing.T) *url.URL {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.auth = r.Header.Get("Authorization")
		if r.URL.Path != "/api/bans" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(p.body))
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	u.User = url.UserPassword("gantry", "s3cret-pw")
	return u
}

func bansJSON(t *testing.T, es ...Entry) string {
	b, err := json.Marshal(map[string]any{"enabled": true, "bans": es})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestImportHostile: a peer's bans apply locally, marked with their origin;
// what this node never bans, malformed and oversized answers, and bans the peer
// itself imported are refused, each with a log line that never shows the
// password.
func TestImportHostile(t *testing.T) {
	until := time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC) // an hour past the test clock
	good := Entry{Source: "203.0.113.50/32", Rule: "exploit", Sample: "GET /.env", Until: until, Strikes: 1}
	tests := []struct {
		name    string
		body    string
		banned  []string // addresses banned after the poll
		free    []string // addresses not banned
		wantErr string
		wantLog string
	}{
		{"a good ban", bansJSON(t, good), []string{"203.0.113.50"}, nil, "", ""},
		{"the whole internet", bansJSON(t, good, Entry{Source: "0.0.0.0/0", Rule: "exploit", Until: until}), []string{"203.0.113.50"}, []string{"198.51.100.1"}, "", "not to another range"},
		{"the IPv6 internet", bansJSON(t, Entry{Source: "::/0", Rule: "exploit", Until: until}), nil, []string{"2001:db8::1"}, "", "not to another range"},
		{"loopback", bansJSON(t, Entry{Source: "127.0.0.1/32", Rule: "exploit", Until: until}), nil, []string{"127.0.0.1"}, "", "never banned"},
		{"IPv4-mapped loopback", bansJSON(t, Entry{Source: "::ffff:127.0.0.1", Rule: "exploit", Until: until}), nil, []string{"127.0.0.1"}, "", "never banned"},
		{"allow-listed", bansJSON(t, Entry{Source: "198.51.100.7", Rule: "exploit", Until: until}), nil, []string{"198.51.100.7"}, "", "never banned"},
		{"a trusted proxy", bansJSON(t, Entry{Source: "192.0.2.10", Rule: "exploit", Until: until}), nil, []string{"192.0.2.10"}, "", "never banned"},
		{"a rule with markup", bansJSON(t, Entry{Source: "203.0.113.51", Rule: "<script>", Until: until}), nil, []string{"203.0.113.51"}, "", "rule: want"},
		{"the peer's own import is not passed on", bansJSON(t, Entry{Source: "203.0.113.52", Rule: "exploit", Until: until, Origin: "node3:2020"}), nil, []string{"203.0.113.52"}, "", ""},
		{"expired there", bansJSON(t, Entry{Source: "203.0.113.53", Rule: "exploit", Until: until.Add(-2 * time.Hour)}), nil, []string{"203.0.113.53"}, "", ""},
		{"malformed body", `{"bans": [{"source": 7}]`, nil, []string{"203.0.113.50"}, "not the JSON of /api/bans", ""},
		{"a huge list", bansJSON(t, make([]Entry, maxImport+1)...), nil, nil, "more than 1000", ""},
		{"a huge body", `{"bans": [], "x": "` + strings.Repeat("a", maxImportBody) + `"}`, nil, nil, "over 4194304 bytes", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			l, _ := newList(t, Options{Allow: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
				Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			p := &peer{body: tc.body}
			u := p.serve(t)
			_, err := l.importFrom(context.Background(), http.DefaultClient, u)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(p.auth, "Basic ") {
				t.Errorf("no Basic credentials sent: %q", p.auth)
			}
			for _, a := range tc.banned {
				if !l.Banned(netip.MustParseAddr(a)) {
					t.Errorf("%s not banned", a)
				}
			}
			for _, a := range tc.free {
				if l.Banned(netip.MustParseAddr(a)) {
					t.Errorf("%s banned", a)
				}
			}
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log %q, want %q", logs.String(), tc.wantLog)
			}
			if strings.Contains(logs.String(), "s3cret") || err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the password was logged: %s %v", logs.String(), err)
			}
			bans, _ := l.Snapshot(0)
			for _, b := range bans {
				if b.Origin != u.Host {
					t.Errorf("ban %+v: origin %q, want %q", b, b.Origin, u.Host)
				}
			}
		})
	}
}

// TestImportLifecycle: an imported ban lasts no longer than this node's
// longest, gives way to no local ban, is lifted when the peer lifts it, is
// never re-exported (it carries its origin), and a local ban of the same
// source replaces it.
func TestImportLifecycle(t *testing.T) {
	l, c := newList(t, Options{Durations: []time.Duration{time.Minute, time.Hour}})
	p := &peer{}
	u := p.serve(t)
	far := c.now().Add(100 * 365 * 24 * time.Hour)
	p.set(bansJSON(t, Entry{Source: "203.0.113.60", Rule: "exploit", Until: far}, Entry{Source: "203.0.113.61", Rule: "scanner", Until: far}))
	// 203.0.113.61 is banned here already, by this node: that ban stands
	l.Offense(netip.MustParseAddr("203.0.113.61"), Exploit, "local")
	n, err := l.importFrom(context.Background(), http.DefaultClient, u)
	if err != nil || n != 1 {
		t.Fatalf("import: %d %v", n, err)
	}
	bans, _ := l.Snapshot(0)
	for _, b := range bans {
		switch b.Source {
		case "203.0.113.60/32":
			if b.Origin != u.Host || b.Until.Sub(c.now()) != time.Hour {
				t.Errorf("imported %+v: want origin %s, an hour", b, u.Host)
			}
		case "203.0.113.61/32":
			if b.Origin != "" || b.Rule != Exploit {
				t.Errorf("the local ban was overridden: %+v", b)
			}
		}
	}
	// polled again 30s on: nothing new, and the capped ban is not pushed on
	first := c.now().Add(time.Hour)
	c.add(30 * time.Second)
	if n, err := l.importFrom(context.Background(), http.DefaultClient, u); err != nil || n != 0 {
		t.Fatalf("second poll: %d %v", n, err)
	}
	bans, _ = l.Snapshot(0)
	for _, b := range bans {
		if b.Source == "203.0.113.60/32" && !b.Until.Equal(first) {
			t.Errorf("the capped ban moved from %s to %s", first, b.Until)
		}
	}
	// the peer lifts it: lifted here
	p.set(bansJSON(t))
	l.importFrom(context.Background(), http.DefaultClient, u)
	if l.Banned(netip.MustParseAddr("203.0.113.60")) || !l.Banned(netip.MustParseAddr("203.0.113.61")) {
		t.Fatal("the peer's unban was not followed, or took the local ban with it")
	}
}

// TestImportPolls: StartImport polls until stopped, and a failing peer is
// logged once, not on every poll.
func TestImportPolls(t *testing.T) {
	var logs syncLog
	l, _ := newList(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	p := &peer{body: "nonsense"}
	u := p.serve(t)
	stop := l.StartImport(context.Background(), ImportOptions{Sources: []*url.URL{u}, Every: 10 * time.Millisecond})
	defer stop()
	peertest.WaitFor(t, 10*time.Second, "a failing poll logged", func() bool { return strings.Contains(logs.String(), "bans not imported") })
	p.set(bansJSON(t, Entry{Source: "203.0.113.70", Rule: "exploit", Until: time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC)}))
	peertest.WaitFor(t, 10*time.Second, "the ban imported", func() bool { return l.Banned(netip.MustParseAddr("203.0.113.70")) })
	stop()
	if n := strings.Count(logs.String(), "bans not imported"); n != 1 {
		t.Fatalf("the failing peer was logged %d times", n)
	}
}

type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncLog) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// FuzzImport: whatever a peer answers, nothing gantry never bans is banned,
// no more than maxImport bans are taken, and every one is a unit.
func FuzzImport(f *testing.F) {
	f.Add(`{"bans":[{"source":"203.0.113.5","rule":"exploit","until":"2026-01-02T04:00:00Z"}]}`) // one good ban
	f.Add(`{"bans":[{"source":"0.0.0.0/0","rule":"exploit","until":"2026-01-02T04:00:00Z"}]}`)   // the internet
	f.Add(`{"bans":[{"source":"::ffff:10.1.2.3","rule":"x","until":"2099-01-01T00:00:00Z"}]}`)   // mapped private
	f.Add(`{"bans":[{"source":"2001:db8:42::/48","rule":"ipv6-48","until":"2099-01-01T00:00:00Z","origin":""}]}`)
	f.Add(`{"bans":null}`) // nothing
	f.Add(`[1,2,3]`)       // not an object
	f.Fuzz(func(t *testing.T, body string) {
		l, _ := newList(t, Options{Allow: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
		bans, more, err := parseImport([]byte(body))
		if err != nil {
			return
		}
		l.apply("peer:2020", bans, !more)
		got, st := l.Snapshot(0)
		if st.Active > maxImport {
			t.Fatalf("%d bans taken", st.Active)
		}
		for _, b := range got {
			k, err := Unit(b.Source)
			if err != nil || k.String() != b.Source || l.never(k) || b.Origin != "peer:2020" {
				t.Fatalf("ban %+v taken", b)
			}
		}
	})
}

// TestShared: a peer reads this node's own bans in force, newest first, at
// most maxImport, told when older ones were left out; an importer that reads
// such a cut list keeps the bans of that peer it did not see.
func TestShared(t *testing.T) {
	a, c := newList(t, Options{})
	imported := netip.MustParseAddr("198.51.100.99")
	a.apply("node3:2020", []Entry{{Source: imported.String(), Rule: Exploit, Until: c.now().Add(time.Hour)}}, true)
	for i := range maxImport + 1 {
		c.add(time.Millisecond)
		if _, err := a.Ban(netip.AddrFrom4([4]byte{203, 0, byte(i / 256), byte(i % 256)}).String(), "", time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	bans, more := a.Shared()
	if len(bans) != maxImport || !more || bans[0].Source != "203.0.3.232/32" || bans[maxImport-1].Source != "203.0.0.1/32" {
		t.Fatalf("%d bans, more %v, newest %+v, oldest %+v", len(bans), more, bans[0], bans[len(bans)-1])
	}
	for _, b := range bans {
		if b.Origin != "" {
			t.Fatalf("an imported ban is shared: %+v", b)
		}
	}

	b, _ := newList(t, Options{Now: c.now})
	b.apply("a:2020", []Entry{{Source: "203.0.0.0", Rule: Manual, Until: c.now().Add(time.Hour)}}, true)
	b.apply("a:2020", bans, !more)
	if !b.Banned(netip.MustParseAddr("203.0.0.0")) {
		t.Fatal("a ban the peer left out of a cut list was lifted")
	}
	b.apply("a:2020", bans, true)
	if b.Banned(netip.MustParseAddr("203.0.0.0")) {
		t.Fatal("a ban the peer no longer lists was kept")
	}
}
