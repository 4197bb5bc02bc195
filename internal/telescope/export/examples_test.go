package export

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"gantry/internal/peertest"
	"gantry/internal/telescope"
)

// TestExampleQueries runs the queries of examples/clickhouse on rows two nodes
// exported, and checks what a person would read.
func TestExampleQueries(t *testing.T) {
	ch := peertest.StartClickHouse(t)
	tg := target(t, ch.URL+"/", "", "") // the default database: the queries name no database
	now := time.Now().UTC().Truncate(time.Second)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	scan := func(src string, packets, targets uint64, tool string, start time.Time) telescope.Scan {
		return telescope.Scan{Source: src, Kind: "horizontal", Protocol: "tcp", Ports: []uint16{23}, Targets: targets,
			Packets: packets, Start: start, End: start.Add(time.Minute), Tool: tool}
	}
	attack := func(victim, proto string, packets uint64, pps float64, start time.Time) telescope.Attack {
		return telescope.Attack{Victim: victim, Protocol: proto, Packets: packets, Start: start, End: start.Add(time.Hour),
			MaxPPM: 60, EstPPS: pps, Ports: []uint16{80}}
	}
	for node, r := range map[string]*telescope.Report{
		"edge-a": {
			Scans: []telescope.Scan{scan("192.0.2.1", 500, 256, "zmap", ago(time.Hour)), scan("192.0.2.2", 100, 30, "", ago(3*time.Hour))},
			Attacks: []telescope.Attack{attack("203.0.113.80", "tcp", 1000, 2e6, ago(time.Hour)),
				attack("203.0.113.90", "icmp", 50, 1e5, ago(2*time.Hour))},
		},
		"edge-b": {
			Scans:   []telescope.Scan{scan("192.0.2.1", 300, 100, "masscan", ago(48*time.Hour)), scan("192.0.2.3", 900, 4096, "", ago(10*24*time.Hour))},
			Attacks: []telescope.Attack{attack("203.0.113.80", "udp", 400, 3e6, ago(30*time.Minute))},
		},
	} {
		if _, err := Report(context.Background(), tg, node, r); err != nil {
			t.Fatal(err)
		}
	}
	for node, events := range map[string][]HTTPEvent{
		"edge-a": {
			{Time: ago(time.Minute), Source: netip.MustParseAddr("192.0.2.1"), Rule: "dotenv", Category: "exploit"},
			{Time: ago(2 * time.Minute), Source: netip.MustParseAddr("192.0.2.2"), Rule: "dotenv", Category: "exploit"},
			{Time: ago(3 * time.Minute), Source: netip.MustParseAddr("192.0.2.1"), Rule: "dotenv", Category: "exploit"},
			{Time: ago(4 * time.Minute), Source: netip.MustParseAddr("192.0.2.1"), Rule: "zgrab", Category: "scanner"},
			{Time: ago(48 * time.Hour), Source: netip.MustParseAddr("192.0.2.9"), Rule: "zgrab", Category: "scanner"},
		},
		"edge-b": {
			{Time: ago(time.Hour), Source: netip.MustParseAddr("2001:db8::1"), Rule: "ip-host", Category: "probe"},
		},
	} {
		e := Start(Options{Target: tg, Node: node, Every: 10 * time.Millisecond})
		for _, ev := range events {
			e.HTTPEvent(ev)
		}
		peertest.WaitFor(t, 10*time.Second, node+"'s requests exported", func() bool { return e.Stats().Exported == uint64(len(events)) })
		e.Close()
	}
	first := func(d time.Duration) string { return ago(d).Format(time.DateTime) }
	for _, tc := range []struct{ file, want string }{
		// 192.0.2.3 scanned ten days ago: not this week
		{"top-scanners-week.sql", "192.0.2.1\t2\t2\t800\t256\ttcp\tmasscan,zmap\n" +
			"192.0.2.2\t1\t1\t100\t30\ttcp\t\n"},
		{"attacks-by-victim.sql", "203.0.113.80\t2\t2\ttcp,udp\t1400\t3000000\t" + first(time.Hour) + "\t" + ago(30*time.Minute).Add(time.Hour).Format(time.DateTime) + "\n" +
			"203.0.113.90\t1\t1\ticmp\t50\t100000\t" + first(2*time.Hour) + "\t" + ago(2*time.Hour).Add(time.Hour).Format(time.DateTime) + "\n"},
		// the request of two days ago is not in the last day
		{"requests-by-rule.sql", "edge-a\texploit\tdotenv\t3\t2\nedge-a\tscanner\tzgrab\t1\t1\nedge-b\tprobe\tip-host\t1\t1\n"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			sql, err := os.ReadFile("../../../examples/clickhouse/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if got := ch.Query(t, string(sql)); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
