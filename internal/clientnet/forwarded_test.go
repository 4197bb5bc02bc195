package clientnet

import (
	"net/netip"
	"strings"
	"testing"
)

// proxies is the trust of the tests: a load balancer's network and one
// IPv6 proxy.
func proxies(a netip.Addr) bool {
	return netip.MustParsePrefix("10.0.0.0/8").Contains(a) || a == netip.MustParseAddr("2001:db8:ffff::1")
}

func TestForwarded(t *testing.T) {
	for _, c := range []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		{"untrusted peer: the header is the client's own words", "203.0.113.9", []string{"198.51.100.1"}, "203.0.113.9"},
		{"untrusted peer naming a trusted proxy", "203.0.113.9", []string{"10.0.0.1"}, "203.0.113.9"},
		{"trusted peer, one hop", "10.0.0.1", []string{"198.51.100.1"}, "198.51.100.1"},
		{"trusted peer, client spoofs a left element", "10.0.0.1", []string{"192.0.2.66, 198.51.100.1"}, "198.51.100.1"},
		{"two trusted proxies", "10.0.0.1", []string{"192.0.2.66, 198.51.100.1, 10.0.0.2"}, "198.51.100.1"},
		{"several field lines, read as one list", "10.0.0.1", []string{"192.0.2.66", "198.51.100.1", "10.0.0.2"}, "198.51.100.1"},
		{"trusted peer, no header", "10.0.0.1", nil, "10.0.0.1"},
		{"every hop trusted", "10.0.0.1", []string{"10.0.0.3, 10.0.0.2"}, "10.0.0.3"},
		{"malformed rightmost element stops at the proxy", "10.0.0.1", []string{"198.51.100.1, unknown"}, "10.0.0.1"},
		{"address with a port is malformed", "10.0.0.1", []string{"198.51.100.1:4444"}, "10.0.0.1"},
		{"zone is malformed", "10.0.0.1", []string{"fe80::1%eth0"}, "10.0.0.1"},
		{"empty elements skipped", "10.0.0.1", []string{"198.51.100.1,, ,"}, "198.51.100.1"},
		{"IPv4-mapped client read as IPv4", "10.0.0.1", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
		{"IPv4-mapped proxy trusted as IPv4", "::ffff:10.0.0.1", []string{"::ffff:10.0.0.2, 198.51.100.1"}, "198.51.100.1"},
		{"IPv4-mapped trusted hop in the list", "10.0.0.1", []string{"198.51.100.1, ::ffff:10.0.0.2"}, "198.51.100.1"},
		{"IPv6 proxy and client", "2001:db8:ffff::1", []string{"2001:db8:1:2::3"}, "2001:db8:1:2::3"},
		{"invalid peer", "", []string{"198.51.100.1"}, "invalid IP"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var peer netip.Addr
			if c.peer != "" {
				peer = netip.MustParseAddr(c.peer)
			}
			if got := Forwarded(peer, c.xff, proxies).String(); got != c.want {
				t.Errorf("Forwarded(%s, %q) = %s, want %s", c.peer, c.xff, got, c.want)
			}
		})
	}
}

// FuzzForwarded: whatever the header says, the client is the peer, a trusted
// proxy or an address written in the header, and never a mapped address.
func FuzzForwarded(f *testing.F) {
	f.Add("10.0.0.1", "198.51.100.1")                   // one hop
	f.Add("10.0.0.1", "a, 198.51.100.1 ,10.0.0.2")      // spoofed left part
	f.Add("203.0.113.9", "198.51.100.1")                // untrusted peer
	f.Add("10.0.0.1", ",,,::ffff:1.2.3.4,")             // mapped, empty elements
	f.Add("::ffff:10.0.0.1", "[2001:db8::1]:80, x\x00") // junk
	f.Fuzz(func(t *testing.T, peerS, xff string) {
		peer, err := netip.ParseAddr(peerS)
		if err != nil {
			return
		}
		got := Forwarded(peer, []string{xff}, proxies)
		if got.Is4In6() {
			t.Fatalf("mapped address %s", got)
		}
		if got == peer.Unmap() {
			return
		}
		if !proxies(peer.Unmap()) {
			t.Fatalf("untrusted peer %s, client %s", peer, got)
		}
		found := false
		for _, e := range strings.Split(xff, ",") {
			if a, err := netip.ParseAddr(strings.TrimSpace(e)); err == nil && a.Unmap() == got {
				found = true
			}
		}
		if !found {
			t.Fatalf("client %s not in %q", got, xff)
		}
	})
}
