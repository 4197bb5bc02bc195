package ban

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for bans that expire without waiting.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newList(t testing.TB, opts Options) (*List, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if opts.Now == nil {
		opts.Now = c.now
	}
	l, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, c
}

var (
	attacker = netip.MustParseAddr("203.0.113.7")
	other    = netip.MustParseAddr("203.0.113.8")
)

func TestOffenseRules(t *testing.T) {
	type hit struct {
		rule  string
		after time.Duration // clock moves this much before the hit
	}
	repeat := func(rule string, n int, every time.Duration) []hit {
		var out []hit
		for range n {
			out = append(out, hit{rule, every})
		}
		return out
	}
	opts := Options{ScannerHits: 5, ScannerWindow: time.Minute, DarkPorts: 3, AdminLogins: 4, RateLimited: 10, Window: time.Minute}
	tests := []struct {
		name   string
		opts   *Options
		hits   []hit
		banned bool
		rule   string
	}{
		{"an exploit bans at once", nil, []hit{{Exploit, 0}}, true, Exploit},
		{"scanner below its count", nil, repeat(Scanner, 4, time.Second), false, ""},
		{"scanner at its count", nil, repeat(Scanner, 5, time.Second), true, Scanner},
		{"scanner spread past its window", nil, repeat(Scanner, 10, 20*time.Second), false, ""},
		{"dark ports at their count", nil, repeat(DarkPort, 3, time.Second), true, DarkPort},
		{"admin logins at their count", nil, repeat(AdminLogin, 4, time.Second), true, AdminLogin},
		{"rate limited below its count", nil, repeat(RateLimited, 9, time.Second), false, ""},
		{"rate limited at its count", nil, repeat(RateLimited, 10, time.Second), true, RateLimited},
		{"rules count apart", nil, append(repeat(Scanner, 4, time.Second), repeat(DarkPort, 2, time.Second)...), false, ""},
		{"a rule set to 0 never bans", &Options{DarkPorts: 0}, repeat(DarkPort, 100, 0), false, ""},
		{"an unknown rule never bans", nil, []hit{{"probe", 0}}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := opts
			if tc.opts != nil {
				o = *tc.opts
			}
			l, c := newList(t, o)
			for _, h := range tc.hits {
				c.add(h.after)
				l.Offense(attacker, h.rule, "GET /x")
			}
			if got := l.Banned(attacker); got != tc.banned {
				t.Fatalf("banned = %v, want %v", got, tc.banned)
			}
			if l.Banned(other) {
				t.Error("a neighbour got banned too")
			}
			bans, _ := l.Snapshot(0)
			if tc.banned && (len(bans) != 1 || bans[0].Rule != tc.rule || bans[0].Source != "203.0.113.7/32" || bans[0].Sample != "GET /x") {
				t.Errorf("bans %+v", bans)
			}
		})
	}
}

// TestNeverBanned: loopback, private ranges, the allow list and trusted proxies
// never get banned, by any rule or by hand, and a neighbour of an allowed IPv6
// address in its /64 neither (the /64 is one ban).
func TestNeverBanned(t *testing.T) {
	l, _ := newList(t, Options{
		Allow:   []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:5::7/128")},
		Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")},
	})
	for _, a := range []string{"127.0.0.1", "127.9.9.9", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "fd00::1",
		"fe80::1", "169.254.1.1", "100.64.0.1", "0.0.0.0", "::", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
		"198.51.100.99", "2001:db8:5::8", "192.0.2.10"} {
		t.Run(a, func(t *testing.T) {
			addr := netip.MustParseAddr(a)
			for _, rule := range []string{Exploit, Scanner, DarkPort, AdminLogin, RateLimited} {
				for range 200 {
					l.Offense(addr, rule, "GET /.env")
				}
			}
			if l.Banned(addr) {
				t.Fatal("banned")
			}
			if _, err := l.Ban(a, "by hand", time.Hour); !errors.Is(err, ErrNever) {
				t.Fatalf("ban by hand: %v", err)
			}
		})
	}
	if _, st := l.Snapshot(0); st.Active != 0 || len(st.Issued) != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestGrowthAndExpiry: each ban of a repeat offender lasts longer, the last
// duration repeating; a ban ends on time; an unban forgets the strikes.
func TestGrowthAndExpiry(t *testing.T) {
	l, c := newList(t, Options{Durations: []time.Duration{10 * time.Minute, time.Hour, 24 * time.Hour}})
	v6 := netip.MustParseAddr("2001:db8:1:2::99")
	for i, want := range []time.Duration{10 * time.Minute, time.Hour, 24 * time.Hour, 24 * time.Hour} {
		l.Offense(v6, Exploit, "GET /.env")
		// the whole /64 is the client
		if !l.Banned(netip.MustParseAddr("2001:db8:1:2::1")) {
			t.Fatalf("ban %d: its /64 is not banned", i+1)
		}
		if l.Banned(netip.MustParseAddr("2001:db8:1:3::1")) {
			t.Fatalf("ban %d: the next /64 is banned", i+1)
		}
		bans, _ := l.Snapshot(0)
		if len(bans) != 1 || bans[0].Until.Sub(bans[0].Since) != want || bans[0].Strikes != i+1 || bans[0].Source != "2001:db8:1:2::/64" {
			t.Fatalf("ban %d: %+v, want %v", i+1, bans, want)
		}
		// an offense while banned is no new strike
		l.Offense(v6, Exploit, "GET /.git/config")
		c.add(want - time.Second)
		if !l.Banned(v6) {
			t.Fatalf("ban %d ended early", i+1)
		}
		c.add(time.Second)
		if l.Banned(v6) {
			t.Fatalf("ban %d did not end on time", i+1)
		}
	}
	// unbanning a source whose ban has ended forgets its strikes
	if ok, err := l.Unban("2001:db8:1:2::5"); !ok || err != nil {
		t.Fatalf("unban of a remembered source: %v %v", ok, err)
	}
	l.Offense(v6, Exploit, "GET /.env")
	if bans, _ := l.Snapshot(0); len(bans) != 1 || bans[0].Strikes != 1 {
		t.Errorf("after unban: %+v", bans)
	}
}

func TestManualBan(t *testing.T) {
	l, c := newList(t, Options{})
	tests := []struct {
		name, source, err string
	}{
		{"address", "203.0.113.9", ""},
		{"unit prefix", "2001:db8:9:9::/64", ""},
		{"a range is not a unit", "203.0.113.0/24", "not to another range"},
		{"an IPv6 /56 is not a unit", "2001:db8:9::/56", "not to another range"},
		{"a name", "example.com", "want an IP address"},
		{"loopback", "127.0.0.1", "never banned"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := l.Ban(tc.source, "seen in the logs", 2*time.Hour)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || e.Rule != Manual || e.Until.Sub(e.Since) != 2*time.Hour {
				t.Fatalf("%+v %v", e, err)
			}
		})
	}
	if !l.Banned(netip.MustParseAddr("203.0.113.9")) || !l.Banned(netip.MustParseAddr("2001:db8:9:9::1")) {
		t.Fatal("manual bans not in force")
	}
	if ok, _ := l.Unban("203.0.113.9"); !ok || l.Banned(netip.MustParseAddr("203.0.113.9")) {
		t.Fatal("unban")
	}
	c.add(2 * time.Hour)
	if l.Banned(netip.MustParseAddr("2001:db8:9:9::1")) {
		t.Fatal("manual ban did not expire")
	}
}

// TestFloodBounded: a flood of random sources keeps the bans and the counters
// within their caps, the oldest bans evicted and counted, and a source banned
// last still banned.
func TestFloodBounded(t *testing.T) {
	l, c := newList(t, Options{Max: 1000, MaxCounters: 500, ScannerHits: 5})
	for i := range 20000 {
		a := netip.AddrFrom4([4]byte{203, byte(i >> 16), byte(i >> 8), byte(i)})
		l.Offense(a, Exploit, "GET /.env")
		l.Offense(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), Scanner, "GET /admin")
		c.add(time.Millisecond)
	}
	_, st := l.Snapshot(0)
	if st.Active != 1000 || st.Evicted != 19000 || st.Counting > 500 || st.CountersEvicted == 0 {
		t.Fatalf("stats %+v", st)
	}
	if len(l.bans) != 1000 || l.order.Len() != 1000 {
		t.Fatalf("held %d, ordered %d", len(l.bans), l.order.Len())
	}
	last := netip.AddrFrom4([4]byte{203, 0, byte(19999 >> 8), byte(19999 & 0xff)})
	if !l.Banned(last) || l.Banned(netip.AddrFrom4([4]byte{203, 0, 0, 0})) {
		t.Fatal("not the oldest evicted")
	}
}

func BenchmarkBannedMiss(b *testing.B) {
	for _, n := range []int{0, 100000} {
		b.Run(fmt.Sprint(n, " bans"), func(b *testing.B) {
			l, _ := newList(b, Options{Max: n + 1})
			for i := range n {
				l.Offense(netip.AddrFrom4([4]byte{203, byte(i >> 16), byte(i >> 8), byte(i)}), Exploit, "GET /.env")
			}
			a := netip.MustParseAddr("198.51.100.1")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if l.Banned(a) {
					b.Fatal("banned")
				}
			}
		})
	}
}

// TestConcurrent: offenses, checks at accept, snapshots and unbans at once (run
// with -race).
func TestConcurrent(t *testing.T) {
	l, _ := newList(t, Options{Max: 100, ScannerHits: 2})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				a := netip.AddrFrom4([4]byte{203, 0, byte(w), byte(i % 200)})
				switch i % 4 {
				case 0:
					l.Offense(a, Exploit, "GET /.env")
				case 1:
					l.Offense(a, Scanner, "GET /admin")
				case 2:
					l.refuse(a)
					l.Snapshot(5)
				case 3:
					l.Unban(a.String())
				}
			}
		}()
	}
	wg.Wait()
	if _, st := l.Snapshot(0); st.Active+st.Remembered > 100 {
		t.Fatalf("over the cap: %+v", st)
	}
}

// TestTranslatedSources: behind NAT64/SIIT (RFC 6052's 64:ff9b::/96) every IPv4
// client reaches gantry from one /64, each with its own /128: banning the /64 of
// one bans the whole IPv4 Internet.
func TestTranslatedSources(t *testing.T) {
	for _, tc := range []struct{ name, bad, good string }{
		{"well-known prefix", "64:ff9b::203.0.113.7", "64:ff9b::198.51.100.1"},
		{"local-use prefix", "64:ff9b:1::cb00:7107", "64:ff9b:1::c633:6401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := newList(t, Options{})
			l.Offense(netip.MustParseAddr(tc.bad), Exploit, "GET /.env")
			if !l.Banned(netip.MustParseAddr(tc.bad)) {
				t.Fatal("offender not banned")
			}
			if l.Banned(netip.MustParseAddr(tc.good)) {
				t.Fatalf("ban of %s bans %s too", tc.bad, tc.good)
			}
		})
	}
}
