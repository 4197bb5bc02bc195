// Package geoiptest writes small MaxMind DB files for tests, so that no database is
// committed: a country database and an ASN database laid out as GeoLite2's.
package geoiptest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Network is one network of the test databases.
type Network struct {
	CIDR    string
	Country string // ISO code; empty: not in the country database
	ASN     uint32 // 0: not in the ASN database
	ASOrg   string
}

// Write writes GeoLite2-Country.mmdb and GeoLite2-ASN.mmdb into dir and returns
// their paths.
func Write(t testing.TB, dir string, nets []Network) (country, asn string) {
	t.Helper()
	build := func(typ string, record func(Network) mmdbtype.Map) string {
		tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: typ, RecordSize: 24, IncludeReservedNetworks: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nets {
			rec := record(n)
			if rec == nil {
				continue
			}
			_, ipnet, err := net.ParseCIDR(n.CIDR)
			if err != nil {
				t.Fatal(err)
			}
			if err := tree.Insert(ipnet, rec); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(dir, typ+".mmdb")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := tree.WriteTo(f); err != nil {
			t.Fatal(err)
		}
		return path
	}
	country = build("GeoLite2-Country", func(n Network) mmdbtype.Map {
		if n.Country == "" {
			return nil
		}
		return mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(n.Country)}}
	})
	asn = build("GeoLite2-ASN", func(n Network) mmdbtype.Map {
		if n.ASN == 0 {
			return nil
		}
		return mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(n.ASN),
			"autonomous_system_organization": mmdbtype.String(n.ASOrg)}
	})
	return country, asn
}
