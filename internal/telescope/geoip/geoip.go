// Package geoip locates addresses with MaxMind DB files (GeoLite2/GeoIP2 Country,
// City and ASN, or any database of the same layout): the country and the
// autonomous system of a scanner or a DoS victim.
package geoip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"

	"gantry/internal/telescope"
)

// DB is a set of opened databases; it is safe for concurrent use.
type DB struct {
	country []*maxminddb.Reader
	asn     []*maxminddb.Reader
}

type kind int

const (
	kindCountry kind = iota
	kindASN
)

// kindOf tells a database's records by its metadata's database_type.
func kindOf(r *maxminddb.Reader) (kind, error) {
	t := r.Metadata.DatabaseType
	switch {
	case strings.Contains(t, "ASN"):
		return kindASN, nil
	case strings.Contains(t, "Country"), strings.Contains(t, "City"):
		return kindCountry, nil
	}
	return 0, fmt.Errorf("database type %q: want a Country, City or ASN database (GeoLite2-Country.mmdb, GeoLite2-ASN.mmdb)", t)
}

// Check opens path as a MaxMind DB and closes it: for config validation.
func Check(path string) error {
	db, err := Open([]string{path})
	if err != nil {
		return err
	}
	return db.Close()
}

// Open opens every file; the error names the file that is missing or not a
// MaxMind DB of a known type.
func Open(paths []string) (*DB, error) {
	db := &DB{}
	for _, p := range paths {
		r, err := maxminddb.Open(p)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("geoip %s: %w", p, err)
		}
		k, err := kindOf(r)
		if err != nil {
			r.Close()
			db.Close()
			return nil, fmt.Errorf("geoip %s: %w", p, err)
		}
		if k == kindASN {
			db.asn = append(db.asn, r)
		} else {
			db.country = append(db.country, r)
		}
	}
	return db, nil
}

// Close closes every database.
func (db *DB) Close() error {
	var errs []error
	for _, r := range append(db.country, db.asn...) {
		errs = append(errs, r.Close())
	}
	db.country, db.asn = nil, nil
	return errors.Join(errs...)
}

type countryRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	// RegisteredCountry is where the network is registered, for addresses
	// (anycast, satellite) that have no country of their own.
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
}

type asnRecord struct {
	Number uint32 `maxminddb:"autonomous_system_number"`
	Org    string `maxminddb:"autonomous_system_organization"`
}

// Lookup returns what the databases know of a; the first database that knows a
// field gives it. A lookup error (a corrupt record) leaves the field empty.
func (db *DB) Lookup(a netip.Addr) telescope.Location {
	var loc telescope.Location
	a = a.Unmap()
	for _, r := range db.country {
		var rec countryRecord
		if err := r.Lookup(a).Decode(&rec); err == nil {
			loc.Country = rec.Country.ISOCode
			if loc.Country == "" {
				loc.Country = rec.RegisteredCountry.ISOCode
			}
			if loc.Country != "" {
				break
			}
		}
	}
	for _, r := range db.asn {
		var rec asnRecord
		if err := r.Lookup(a).Decode(&rec); err == nil && rec.Number != 0 {
			loc.ASN, loc.ASOrg = rec.Number, rec.Org
			break
		}
	}
	return loc
}
