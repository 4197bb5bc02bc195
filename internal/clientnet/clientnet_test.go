package clientnet

import (
	"net/netip"
	"testing"
)

func TestNetworks(t *testing.T) {
	for _, tc := range []struct {
		name, addr     string
		host, of, wide string
	}{
		{"IPv4", "203.0.113.250", "203.0.113.250/32", "203.0.113.0/24", "203.0.0.0/16"},
		{"IPv6", "2001:db8:7:1::ffff:1", "2001:db8:7:1::/64", "2001:db8:7:1::/64", "2001:db8:7::/48"},
		{"IPv4 mapped in IPv6", "::ffff:192.0.2.7", "192.0.2.7/32", "192.0.2.0/24", "192.0.0.0/16"},
		{"IPv4 translated by NAT64", "64:ff9b::203.0.113.7", "64:ff9b::cb00:7107/128", "64:ff9b::cb00:7100/120", "64:ff9b::cb00:0/112"},
	} {
		a := netip.MustParseAddr(tc.addr)
		if got := Host(a).String(); got != tc.host {
			t.Errorf("%s: Host(%s) = %s, want %s", tc.name, a, got, tc.host)
		}
		if got := Of(a).String(); got != tc.of {
			t.Errorf("%s: Of(%s) = %s, want %s", tc.name, a, got, tc.of)
		}
		if got := Wide(a).String(); got != tc.wide {
			t.Errorf("%s: Wide(%s) = %s, want %s", tc.name, a, got, tc.wide)
		}
	}
	for remote, want := range map[string]string{
		"192.0.2.7:1234": "192.0.2.0/24", "[2001:db8::1]:80": "2001:db8::/64", "192.0.2.7": "192.0.2.0/24", "@": "invalid Prefix",
	} {
		if got := OfRemote(remote).String(); got != want {
			t.Errorf("OfRemote(%q) = %s, want %s", remote, got, want)
		}
	}
	for remote, want := range map[string]string{
		"192.0.2.7:1234": "192.0.2.7/32", "[2001:db8::1:2:3:4]:80": "2001:db8::/64", "@": "invalid Prefix",
	} {
		if got := HostOfRemote(remote).String(); got != want {
			t.Errorf("HostOfRemote(%q) = %s, want %s", remote, got, want)
		}
	}
	if Of(netip.Addr{}).IsValid() {
		t.Error("the zero Addr has a network")
	}
}
