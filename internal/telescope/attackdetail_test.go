package telescope

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAttackDetails: a SYN flood on a victim's web and mail ports, seen by a /24,
// reports its duration, its mean and peak rates, the Internet-wide estimate under
// the stated telescope size, and the services hit with their packets.
func TestAttackDetails(t *testing.T) {
	const victim = "203.0.113.80"
	c := NewClassifier(Options{Dark: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	t0 := int64(1_600_000_000) * 1e9
	type pkt struct {
		at    time.Duration
		sport uint16
	}
	var pkts []pkt
	send := func(at time.Duration, sport uint16) { pkts = append(pkts, pkt{at, sport}) }
	// 120 s: one packet a second from port 80, and a burst of 30 from port 25
	// within the first 10 s; then 10 ports once each, past the 8 counted alone
	for i := range 121 {
		send(time.Duration(i)*time.Second, 80)
	}
	for i := range 30 {
		send(time.Duration(i)*300*time.Millisecond, 25)
	}
	for i := range 10 {
		send(time.Duration(60+i)*time.Second, uint16(9000+i))
	}
	slices.SortStableFunc(pkts, func(a, b pkt) int { return cmp.Compare(a.at, b.at) }) // as a capture has them
	for _, p := range pkts {
		c.Packet(t0+int64(p.at), LinkEthernet, tcp4(victim, "192.0.2.7", tcpHdr{sport: p.sport, dport: 4444, flags: flagSYN | flagACK}))
	}
	r := c.Report()
	if len(r.Attacks) != 1 {
		t.Fatalf("attacks = %+v", r.Attacks)
	}
	a := r.Attacks[0]
	if a.Packets != 161 || a.Duration != 120 {
		t.Fatalf("packets %d duration %v", a.Packets, a.Duration)
	}
	if math.Abs(a.MeanPPS-161.0/120) > 1e-9 {
		t.Errorf("mean_pps %v, want %v", a.MeanPPS, 161.0/120)
	}
	// the busiest 60 s window: 60 or 61 from port 80, 30 from port 25
	if a.MaxPPM < 90 || a.PeakPPS != float64(a.MaxPPM)/60 {
		t.Errorf("max_ppm %d peak_pps %v", a.MaxPPM, a.PeakPPS)
	}
	// a /24 sees 256/2^32 of the replies
	if want := a.MeanPPS * (1 << 24); math.Abs(a.EstPPS-want) > 1e-6*want {
		t.Errorf("est_pps %v, want %v", a.EstPPS, want)
	}
	if want := a.PeakPPS * (1 << 24); math.Abs(a.EstPeakPPS-want) > 1e-6*want {
		t.Errorf("est_peak_pps %v, want %v", a.EstPeakPPS, want)
	}
	if r.TelescopeSize != 256 || r.SizeSource != "dark prefixes" || !strings.Contains(r.Assumption, "n = 256") {
		t.Errorf("size %v %q %q", r.TelescopeSize, r.SizeSource, r.Assumption)
	}
	if len(a.Services) != serviceSlots || a.Services[0] != (Service{80, 121}) || a.Services[1] != (Service{25, 30}) ||
		a.Services[2] != (Service{9000, 1}) || a.ServicesOther != 4 {
		t.Errorf("services %+v other %d", a.Services, a.ServicesOther)
	}
	if len(a.Ports) != 12 {
		t.Errorf("ports %v: every distinct port is still listed", a.Ports)
	}

	var table bytes.Buffer
	r.WriteTable(&table)
	for _, want := range []string{"80:121,25:30,9000:1", "other:4", "2m0s", "256 (dark prefixes)"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

// TestLocate: scans and attacks carry where their address is, in JSON, the table
// and the CSV; an address the lookup does not know stays empty.
func TestLocate(t *testing.T) {
	r := Report{
		Scans:   []Scan{{Source: "198.51.100.9", Kind: "horizontal", Protocol: "tcp"}, {Source: "10.1.1.1", Kind: "vertical", Protocol: "tcp"}},
		Attacks: []Attack{{Victim: "203.0.113.80", Protocol: "tcp"}},
	}
	r.Locate(func(a netip.Addr) Location {
		switch a.String() {
		case "198.51.100.9":
			return Location{Country: "NL", ASN: 64500, ASOrg: "Example Scanner BV"}
		case "203.0.113.80":
			return Location{Country: "JP", ASN: 64501, ASOrg: "Victim KK"}
		}
		return Location{}
	})
	if r.Scans[0].Location != (Location{"NL", 64500, "Example Scanner BV"}) || r.Scans[1].Location != (Location{}) ||
		r.Attacks[0].Location != (Location{"JP", 64501, "Victim KK"}) {
		t.Fatalf("located %+v %+v", r.Scans, r.Attacks)
	}
	var js, table, cs bytes.Buffer
	r.WriteJSON(&js)
	r.WriteTable(&table)
	r.WriteCSV(&cs)
	for _, want := range []string{`"country": "NL"`, `"asn": 64500`, `"as_org": "Victim KK"`} {
		if !strings.Contains(js.String(), want) {
			t.Errorf("json lacks %s", want)
		}
	}
	for _, want := range []string{"AS64500 Example Scanner BV", "AS64501 Victim KK"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %s", want)
		}
	}
	rows, err := csv.NewReader(&cs).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, row := range rows {
		if row[0] == "attack" {
			found = true
			// the last column is targets_estimated, a scan's
			if n := len(row); row[n-4] != "JP" || row[n-3] != "64501" || row[n-2] != "Victim KK" {
				t.Errorf("csv attack row %q", row)
			}
		}
	}
	if !found {
		t.Error("no attack row in the CSV")
	}
}
