package telescope

import (
	"reflect"
	"testing"
	"time"
)

// TestFinishedHooks: OnScan and OnAttack hear of each scan and attack once, when
// it ends, with the figures the report gives (est_pps included); a source below
// the thresholds and one still going are never told.
func TestFinishedHooks(t *testing.T) {
	var scans []Scan
	var attacks []Attack
	c := NewClassifier(Options{ScanHosts: 5, ScanIdle: time.Minute, DoSPackets: 10, DoSDuration: 5 * time.Second, DoSPPM: 5,
		DoSIdle: time.Minute, Size: 256,
		OnScan: func(s Scan) { scans = append(scans, s) }, OnAttack: func(a Attack) { attacks = append(attacks, a) }})
	base := int64(1_600_000_000) * 1e9
	for i := range 10 {
		ts := base + int64(i)*1e9
		c.Packet(ts, LinkEthernet, syn4("198.51.7.9", ip4String(0x0a090001+uint32(i)), 80))    // a scan
		c.Packet(ts, LinkEthernet, syn4("198.51.7.10", ip4String(0x0a090001+uint32(i%2)), 80)) // too few targets
		c.Packet(ts, LinkEthernet, tcp4("203.0.113.80", "10.9.0.1", tcpHdr{sport: 80, dport: uint16(1000 + i), flags: flagSYN | flagACK}))
	}
	if len(scans) != 0 || len(attacks) != 0 {
		t.Fatalf("told of unfinished findings: %+v %+v", scans, attacks)
	}
	running := c.Report()
	c.Advance(base + int64(10*time.Minute))
	if len(scans) != 1 || len(attacks) != 1 {
		t.Fatalf("scans %+v attacks %+v, want one each", scans, attacks)
	}
	if !reflect.DeepEqual(scans[0], running.Scans[0]) {
		t.Errorf("OnScan %+v\nreport %+v", scans[0], running.Scans[0])
	}
	if a, r := attacks[0], running.Attacks[0]; a.Victim != r.Victim || a.Packets != r.Packets || a.EstPPS != r.EstPPS || a.EstPPS == 0 {
		t.Errorf("OnAttack %+v\nreport %+v", a, r)
	}
	c.Advance(base + int64(20*time.Minute))
	if len(scans) != 1 || len(attacks) != 1 {
		t.Errorf("told twice: %d scans, %d attacks", len(scans), len(attacks))
	}
}
