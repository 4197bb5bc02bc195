package ban

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPersist: bans survive a restart with their reason, expiry and strikes; an
// address allowed since is dropped; a damaged file is set aside, not fatal.
func TestPersist(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state", "bans.json")
	l, c := newList(t, Options{File: file})
	l.Offense(attacker, Exploit, "GET /.env")
	l.Offense(netip.MustParseAddr("2001:db8:7::1"), Exploit, "GET /wp-login.php")
	if _, err := l.Ban("192.0.2.77", "manual", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v %v", fi, err)
	}

	l2, err := New(Options{File: file, Now: c.now, Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if !l2.Banned(attacker) || !l2.Banned(netip.MustParseAddr("2001:db8:7::2")) {
		t.Fatal("bans lost across the restart")
	}
	if l2.Banned(netip.MustParseAddr("192.0.2.77")) {
		t.Fatal("a ban of an address allowed since survived")
	}
	bans, _ := l2.Snapshot(0)
	var got Entry
	for _, e := range bans {
		if e.Source == "203.0.113.7/32" {
			got = e
		}
	}
	if got.Rule != Exploit || got.Sample != "GET /.env" || got.Strikes != 1 || got.Until.Sub(got.Since) != 10*time.Minute {
		t.Fatalf("restored %+v", got)
	}

	os.WriteFile(file, []byte("{not json"), 0o600)
	l3, err := New(Options{File: file})
	if err != nil {
		t.Fatalf("damaged file: %v", err)
	}
	l3.Close()
	if _, err := os.Stat(file + ".bad"); err != nil {
		t.Fatal("damaged file not set aside")
	}
}

// FuzzDecodeFile: whatever a bans file holds, reading it never panics and yields
// only valid units with a rule and strikes.
func FuzzDecodeFile(f *testing.F) {
	// a valid file
	f.Add([]byte(`{"version":1,"bans":[{"source":"203.0.113.7/32","rule":"exploit","sample":"GET /.env","since":"2026-01-01T00:00:00Z","until":"2026-01-01T00:10:00Z","strikes":1}]}`))
	// a range where a unit belongs, a bare address, an IPv6 /64
	f.Add([]byte(`{"version":1,"bans":[{"source":"203.0.113.0/24","rule":"x","strikes":1},{"source":"2001:db8::1","rule":"x","strikes":2},{"source":"2001:db8::/64","rule":"x","strikes":1}]}`))
	// an unknown version, and garbage
	f.Add([]byte(`{"version":2,"bans":[]}`))
	f.Add([]byte(`[1,2,3]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, _, err := decodeFile(data)
		if err != nil {
			return
		}
		for _, e := range entries {
			k, err := netip.ParsePrefix(e.Source)
			if err != nil || e.Rule == "" || e.Strikes < 1 || e.Until.Before(e.Since) {
				t.Fatalf("invalid entry accepted: %+v", e)
			}
			if u, err := Unit(k.String()); err != nil || u != k {
				t.Fatalf("not a unit: %s", e.Source)
			}
		}
		if _, err := json.Marshal(entries); err != nil {
			t.Fatal(err)
		}
	})
}

// TestLoadedStrikesOverflow: a bans file with an absurd strike count (damaged, or
// written by someone else) must not crash gantry when the source offends again:
// the next ban's duration is looked up from the strikes.
func TestLoadedStrikesOverflow(t *testing.T) {
	for _, tc := range []struct {
		name    string
		strikes int64
	}{
		{"max int", 1<<63 - 1},
		{"huge", 1 << 62},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "bans.json")
			since := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
			data, _ := json.Marshal(map[string]any{"version": 1, "bans": []map[string]any{{
				"source": "203.0.113.7/32", "rule": Exploit, "sample": "GET /.env",
				"since": since, "until": since.Add(time.Minute), "strikes": tc.strikes}}})
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			// no Close on failure: a panic in ban leaves the list locked
			l, err := New(Options{File: file, Now: func() time.Time { return since.Add(time.Hour) }})
			if err != nil {
				t.Fatal(err)
			}
			l.Offense(attacker, Exploit, "GET /.env")
			defer l.Close()
			if !l.Banned(attacker) {
				t.Fatal("repeat offender not banned")
			}
			bans, _ := l.Snapshot(0)
			if len(bans) != 1 || bans[0].Until.Sub(bans[0].Since) != 24*time.Hour {
				t.Fatalf("want the longest duration for a repeat offender: %+v", bans)
			}
		})
	}
}
