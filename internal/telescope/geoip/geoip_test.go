package geoip

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gantry/internal/telescope"
	"gantry/internal/telescope/geoip/geoiptest"
)

func TestLookup(t *testing.T) {
	country, asn := geoiptest.Write(t, t.TempDir(), []geoiptest.Network{
		{CIDR: "198.51.100.0/24", Country: "NL", ASN: 64500, ASOrg: "Example Scanner BV"},
		{CIDR: "203.0.113.0/24", Country: "JP"},
		{CIDR: "2001:db8::/32", Country: "DE", ASN: 64502, ASOrg: "Six GmbH"},
	})
	db, err := Open([]string{country, asn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tests := []struct {
		addr string
		want telescope.Location
	}{
		{"198.51.100.9", telescope.Location{Country: "NL", ASN: 64500, ASOrg: "Example Scanner BV"}},
		{"::ffff:198.51.100.9", telescope.Location{Country: "NL", ASN: 64500, ASOrg: "Example Scanner BV"}},
		{"203.0.113.80", telescope.Location{Country: "JP"}},
		{"2001:db8::1", telescope.Location{Country: "DE", ASN: 64502, ASOrg: "Six GmbH"}},
		{"192.0.2.1", telescope.Location{}},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := db.Lookup(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "GeoLite2-Country.mmdb")
	os.WriteFile(notDB, []byte("not a database\n"), 0o644)
	tests := []struct{ name, path, err string }{
		{"missing", filepath.Join(dir, "nope.mmdb"), "no such file"},
		{"not a maxmind db", notDB, "geoip " + notDB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}
