package ban

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// in48 is an address in the /64 number i of 2001:db8:42::/48.
func in48(i int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("2001:db8:42:%x::%x", i, (i+1)&0xffff))
}

// TestEscalateTo48: a client rotating through the /64s of its /48 gets the /48
// banned at the Escalate'th /64 within Window, and not otherwise.
func TestEscalateTo48(t *testing.T) {
	wide := netip.MustParsePrefix("2001:db8:42::/48")
	tests := []struct {
		name     string
		opts     Options
		units    []int         // the /64s banned, in order
		every    time.Duration // the clock moves this much before each
		want48   bool
		addrs    []int // /64s that are banned at the end
		notAddrs []string
	}{
		{"four /64s within the window", Options{Escalate: 4}, []int{1, 2, 3, 4}, time.Minute, true, []int{9, 0xffff}, []string{"2001:db8:43::1", "2001:db8:41:ffff::1"}},
		{"three /64s: below the count", Options{Escalate: 4}, []int{1, 2, 3}, time.Minute, false, []int{1, 2, 3}, []string{"2001:db8:42:9::1"}},
		{"one /64 banned again counts once", Options{Escalate: 4, Durations: []time.Duration{time.Minute}}, []int{1, 1, 1, 2, 3}, 2 * time.Minute, false, nil, []string{"2001:db8:42:9::1"}},
		{"spread past the window", Options{Escalate: 4, Window: 10 * time.Minute}, []int{1, 2, 3, 4}, 4 * time.Minute, false, nil, []string{"2001:db8:42:9::1"}},
		{"0 never escalates", Options{Escalate: 0}, []int{1, 2, 3, 4, 5, 6}, time.Second, false, nil, []string{"2001:db8:42:9::1"}},
		{"an allow-listed /64 inside keeps the /48 unbanned", Options{Escalate: 4, Allow: []netip.Prefix{netip.MustParsePrefix("2001:db8:42:ff::/64")}}, []int{1, 2, 3, 4}, time.Second, false, []int{1, 2, 3, 4}, []string{"2001:db8:42:ff::1", "2001:db8:42:9::1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			if opts.Window == 0 {
				opts.Window = 10 * time.Minute
			}
			l, c := newList(t, opts)
			for _, i := range tc.units {
				c.add(tc.every)
				l.Offense(in48(i), Exploit, "GET /.env")
			}
			bans, st := l.Snapshot(0)
			has48 := false
			for _, b := range bans {
				if b.Source == wide.String() {
					has48 = true
					if b.Rule != Escalated || !strings.Contains(b.Sample, "2001:db8:42:4::/64") {
						t.Errorf("the /48's ban %+v", b)
					}
				}
			}
			if has48 != tc.want48 || (st.Issued[Escalated] == 1) != tc.want48 {
				t.Fatalf("/48 banned %v, want %v; bans %+v", has48, tc.want48, bans)
			}
			for _, i := range tc.addrs {
				if !l.Banned(in48(i)) {
					t.Errorf("%s not banned", in48(i))
				}
			}
			for _, a := range tc.notAddrs {
				if l.Banned(netip.MustParseAddr(a)) {
					t.Errorf("%s banned", a)
				}
			}
		})
	}
}

// TestEscalatedLifecycle: the /48 ban closes the open connections of every /64
// inside it, stops new offenses inside it from banning /64s, survives a restart,
// can be lifted by hand, and expires.
func TestEscalatedLifecycle(t *testing.T) {
	file := t.TempDir() + "/bans.json"
	l, c := newList(t, Options{Escalate: 2, Durations: []time.Duration{time.Hour}, File: file})
	closed := false
	untrack := l.Track(&net.TCPAddr{IP: in48(7).AsSlice(), Port: 1}, func() { closed = true })
	defer untrack()
	l.Offense(in48(1), Exploit, "x")
	if closed {
		t.Fatal("a /64 ban closed another /64's connection")
	}
	l.Offense(in48(2), Exploit, "x")
	if !closed {
		t.Fatal("the /48 ban left a connection inside it open")
	}
	if !l.Banned(in48(7)) {
		t.Fatal("the /48 does not cover its /64s")
	}
	l.Offense(in48(8), Exploit, "x")
	if _, st := l.Snapshot(0); st.Active != 3 {
		t.Fatalf("an offense inside the banned /48 banned its /64: %d active", st.Active)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := New(Options{File: file, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if !l2.Banned(in48(9)) {
		t.Fatal("the /48 ban did not survive a restart")
	}
	if ok, err := l2.Unban("2001:db8:42::/48"); !ok || err != nil {
		t.Fatalf("unban the /48: %v %v", ok, err)
	}
	if l2.Banned(in48(9)) || !l2.Banned(in48(1)) {
		t.Fatal("unbanning the /48 is not what lifts it alone")
	}
	if _, err := l2.Ban("2001:db8:42::/48", "by hand", 0); err != nil {
		t.Fatal(err)
	}
	c.add(2 * time.Hour)
	if l2.Banned(in48(9)) || l2.Banned(in48(1)) {
		t.Fatal("bans outlived their duration")
	}
	for _, bad := range []string{"2001:db8::/47", "2001:db8:42::/56", "203.0.113.0/24", "::ffff:203.0.113.7/120"} {
		if _, err := l2.Ban(bad, "", 0); err == nil {
			t.Errorf("ban %s accepted", bad)
		}
	}
}

// TestEscalatedOverRemembered: a /64 whose own ban expired (remembered for
// the next one's length) is still covered by its /48's ban.
func TestEscalatedOverRemembered(t *testing.T) {
	l, c := newList(t, Options{})
	if _, err := l.Ban(in48(5).String(), "", time.Minute); err != nil {
		t.Fatal(err)
	}
	c.add(2 * time.Minute)
	if l.Banned(in48(5)) {
		t.Fatal("the /64's ban outlived its minute")
	}
	if _, err := l.Ban("2001:db8:42::/48", "", time.Hour); err != nil {
		t.Fatal(err)
	}
	if !l.Banned(in48(5)) || !l.active(netip.MustParsePrefix(in48(5).String()+"/64").Masked(), c.now()) {
		t.Fatal("a remembered /64 escapes its /48's ban")
	}
}

// BenchmarkBannedV6 is the accept check of an IPv6 client when the list holds
// 100,000 /64 bans, with and without escalated /48s (which add a second
// lookup).
func BenchmarkBannedV6(b *testing.B) {
	for _, wide := range []int{0, 100} {
		b.Run(fmt.Sprint(wide, " /48s"), func(b *testing.B) {
			l, _ := newList(b, Options{Max: 200000})
			for i := range 100000 {
				l.Offense(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 16), byte(i >> 8), byte(i)}), Exploit, "GET /.env")
			}
			for i := range wide {
				if _, err := l.Ban(fmt.Sprintf("2001:db9:%x::/48", i), "", 0); err != nil {
					b.Fatal(err)
				}
			}
			a := netip.MustParseAddr("2001:db8:ffff:1::1")
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

// TestWideSparesNAT64: a /48 that holds NAT64's prefixes is every IPv4
// client that reaches this node through NAT64, not one site: no hand ban,
// peer or escalation bans it, in gantry or in the kernel.
func TestWideSparesNAT64(t *testing.T) {
	translated := netip.MustParseAddr("64:ff9b::203.0.113.9") // an IPv4 client through NAT64
	for _, tc := range []struct {
		name string
		do   func(t *testing.T, l *List, now time.Time)
	}{
		{"by hand", func(t *testing.T, l *List, _ time.Time) {
			for _, s := range []string{"64:ff9b:0:1::/48", "64:ff9b::/48", "64:ff9b:1:2::/48"} {
				if _, err := l.Ban(s, "by hand", time.Hour); err == nil {
					t.Errorf("ban %s accepted", s)
				}
			}
		}},
		{"from a peer", func(_ *testing.T, l *List, now time.Time) {
			l.apply("peer:2020", []Entry{{Source: "64:ff9b:0:1::/48", Rule: Escalated, Until: now.Add(time.Hour)}}, true)
		}},
		{"escalated", func(_ *testing.T, l *List, _ time.Time) {
			for i := 1; i <= 3; i++ {
				l.Offense(netip.MustParseAddr(fmt.Sprintf("64:ff9b:0:%x::1", i)), Exploit, "x")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, c := newList(t, Options{Escalate: 2})
			k := &kernelLog{}
			l.SetKernel(k)
			tc.do(t, l, c.now())
			if l.Banned(translated) || k.covers(translated) {
				bans, _ := l.Snapshot(0)
				t.Fatalf("the NAT64 prefix's IPv4 clients are banned: %+v, in the kernel %v", bans, k.added)
			}
		})
	}
}

// kernelLog is the nftables table as the list drives it (nftban tests the
// table itself).
type kernelLog struct {
	mu    sync.Mutex
	added []netip.Prefix
}

func (k *kernelLog) Add(p netip.Prefix, _ time.Time) {
	k.mu.Lock()
	k.added = append(k.added, p)
	k.mu.Unlock()
}
func (k *kernelLog) Remove(netip.Prefix) {}
func (k *kernelLog) covers(a netip.Addr) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, p := range k.added {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
