package export

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
	"gantry/internal/telescope"
)

func target(t *testing.T, raw, user, password string) *Target {
	t.Helper()
	tg, err := ParseTarget(raw, user, password)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// count returns the rows of table, or -1 while it does not exist yet.
func count(t *testing.T, ch *peertest.ClickHouse, db, table string) int {
	t.Helper()
	if strings.TrimSpace(ch.Query(t, "EXISTS TABLE "+db+"."+table)) != "1" {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(ch.Query(t, "SELECT count() FROM "+db+"."+table)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestExporterRowsReachClickHouse(t *testing.T) {
	ch := peertest.StartClickHouse(t)
	var logs peertest.LogBuffer
	e := Start(Options{Target: target(t, ch.URL+"/?database=tel", "", ""), Node: "node-a", Every: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	t.Cleanup(e.Close)
	at := time.Date(2026, 12, 3, 10, 20, 30, 456e6, time.UTC)
	src := netip.MustParseAddr("::ffff:198.51.100.7")
	e.HTTPEvent(HTTPEvent{Time: at, Source: src, Host: "203.0.113.5", Method: "GET", Path: "/.env?x=1",
		UserAgent: "zgrab/0.x\t\"quoted\"", Rule: "dotenv", Category: "secrets", Status: 404})
	e.DarkPortHit(DarkPortHit{Time: at, Source: src, Port: 23, Protocol: "tcp", Data: []byte("\xff\xfb\x01root\r\n")})
	e.Scan(telescope.Scan{Source: "192.0.2.9", Kind: "horizontal", Protocol: "tcp", Ports: []uint16{22}, Targets: 5000, Estimated: true,
		Packets: 300, Start: at, End: at.Add(time.Minute), Tool: "zmap"})
	e.Attack(telescope.Attack{Victim: "192.0.2.80", Protocol: "tcp", Packets: 500, Start: at, End: at.Add(2 * time.Minute),
		MaxPPM: 400, EstPPS: 1.5e6, Ports: []uint16{80, 443}})
	e.Ban(Ban{Time: at, Source: "2001:db8:1:2::/64", Rule: "exploit", Sample: "dotenv: GET /.env\n\x00", Until: at.Add(time.Hour), Strikes: 2})
	peertest.WaitFor(t, 10*time.Second, "five rows in ClickHouse", func() bool {
		return count(t, ch, "tel", "http_events") == 1 && count(t, ch, "tel", "darkport_hits") == 1 &&
			count(t, ch, "tel", "scans") == 1 && count(t, ch, "tel", "attacks") == 1 && count(t, ch, "tel", "bans") == 1
	})
	for _, tc := range []struct{ name, query, want string }{
		{"http event", "SELECT time, ms, node, source, host, method, path, user_agent, rule, category, status FROM tel.http_events",
			"2026-12-03 10:20:30\t456\tnode-a\t198.51.100.7\t203.0.113.5\tGET\t/.env?x=1\tzgrab/0.x\\t\"quoted\"\tdotenv\tsecrets\t404\n"},
		{"dark port hit", "SELECT time, node, source, port, protocol, bytes, first_bytes FROM tel.darkport_hits",
			"2026-12-03 10:20:30\tnode-a\t198.51.100.7\t23\ttcp\t9\t\"\\\\xff\\\\xfb\\\\x01root\\\\r\\\\n\"\n"},
		{"scan", "SELECT node, source, kind, protocol, ports, targets, targets_estimated, packets, start_time, end_time, tool FROM tel.scans",
			"node-a\t192.0.2.9\thorizontal\ttcp\t[22]\t5000\t1\t300\t2026-12-03 10:20:30\t2026-12-03 10:21:30\tzmap\n"},
		{"attack", "SELECT node, victim, protocol, packets, start_time, end_time, max_ppm, est_pps, ports FROM tel.attacks",
			"node-a\t192.0.2.80\ttcp\t500\t2026-12-03 10:20:30\t2026-12-03 10:22:30\t400\t1500000\t[80,443]\n"},
		{"ban", "SELECT time, ms, node, source, rule, sample, until, strikes FROM tel.bans",
			"2026-12-03 10:20:30\t456\tnode-a\t2001:db8:1:2::/64\texploit\tdotenv: GET /.env\\n\\0\t2026-12-03 11:20:30\t2\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ch.Query(t, tc.query); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	if s := e.Stats(); s.Exported != 5 || s.Dropped != 0 || s.Queued != 0 {
		t.Errorf("stats %+v, want 5 exported, none dropped or queued", s)
	}
}

// TestExporterCredentials: the writer's password, given in the URL or apart,
// opens the server and never appears in a log line, an error or the stats.
func TestExporterCredentials(t *testing.T) {
	ch := peertest.StartClickHouse(t)
	host := strings.TrimPrefix(ch.URL, "http://")
	for _, tc := range []struct {
		name, url, user, password string
		ok                        bool
	}{
		{"in the URL", "http://" + ch.User + ":" + ch.Password + "@" + host + "/?database=c1", "", "", true},
		{"as parameters", ch.URL + "/?database=c2&user=" + ch.User + "&password=" + ch.Password, "", "", true},
		{"as keys", ch.URL + "/?database=c3", ch.User, ch.Password, true},
		{"keys override the URL", "http://" + ch.User + ":nope-" + ch.Password + "@" + host + "/?database=c4", "", ch.Password, true},
		{"wrong password", "http://" + ch.User + ":wrong-" + ch.Password + "@" + host + "/?database=c5", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs peertest.LogBuffer
			tg := target(t, tc.url, tc.user, tc.password)
			e := Start(Options{Target: tg, Node: "n", Every: 20 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			e.HTTPEvent(HTTPEvent{Time: time.Now(), Rule: "r", Category: "c"})
			if tc.ok {
				peertest.WaitFor(t, 10*time.Second, "the row exported", func() bool { return e.Stats().Exported == 1 })
			} else {
				peertest.WaitFor(t, 10*time.Second, "a failed send", func() bool { return e.Stats().Failures >= 2 })
				if !strings.Contains(logs.String(), "Authentication failed") && !strings.Contains(logs.String(), "Wrong password") {
					t.Errorf("the log does not say why the send failed:\n%s", logs.String())
				}
			}
			e.Close()
			_, err := Report(context.Background(), tg, "n", &telescope.Report{})
			for what, text := range map[string]string{"log": logs.String(), "stats": e.Stats().Target, "target": tg.String(), "error": errText(err)} {
				if strings.Contains(text, ch.Password) {
					t.Errorf("the %s shows the password: %s", what, text)
				}
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestExporterClickHouseAway: with ClickHouse stopped, adding rows never blocks,
// the queue stays at its bound and the rest are dropped and counted; the
// goroutines do not grow; when it is back, the queued rows arrive.
func TestExporterClickHouseAway(t *testing.T) {
	ch := peertest.StartClickHouse(t)
	e := Start(Options{Target: target(t, ch.URL+"/?database=away", "", ""), Node: "n", Every: 20 * time.Millisecond,
		Batch: 100, Queue: 500, MaxBackoff: 50 * time.Millisecond})
	t.Cleanup(e.Close)
	e.HTTPEvent(HTTPEvent{Time: time.Now(), Rule: "first", Category: "c"})
	peertest.WaitFor(t, 10*time.Second, "the first row exported", func() bool { return e.Stats().Exported == 1 })
	ch.Stop()
	goroutines := runtime.NumGoroutine()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 20000 {
		e.HTTPEvent(HTTPEvent{Time: time.Now(), Path: "/" + strconv.Itoa(i) + strings.Repeat("x", 200), Rule: "r", Category: "c"})
	}
	peertest.WaitFor(t, 10*time.Second, "failed sends", func() bool { return e.Stats().Failures >= 3 })
	s := e.Stats()
	if s.Queued != 500 || s.Dropped != 20000-500 || s.Exported != 1 {
		t.Errorf("stats %+v, want 500 queued, 19500 dropped, 1 exported", s)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	// 500 rows of ~400 bytes are held; 19500 more would be ~8 MB
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 2<<20 {
		t.Errorf("heap grew %d bytes with the queue bounded at 500 rows", grown)
	}
	if n := runtime.NumGoroutine(); n > goroutines+2 {
		t.Errorf("%d goroutines, %d before ClickHouse went away", n, goroutines)
	}
	ch.Restart(t)
	peertest.WaitFor(t, 15*time.Second, "the queued rows exported after the restart", func() bool { return e.Stats().Exported == 501 })
	if n := count(t, ch, "away", "http_events"); n != 501 {
		t.Errorf("%d rows in http_events, want 501", n)
	}
}

// TestParseTarget: bad URLs are refused with a reason that never repeats a
// password.
func TestParseTarget(t *testing.T) {
	for _, tc := range []struct{ name, url, want, err string }{
		{"plain", "http://ch:8123/?database=telescope", "http://ch:8123/?database=telescope", ""},
		{"no database", "http://ch:8123", "http://ch:8123/?database=default", ""},
		{"https with user", "https://u:pw-secret@ch:8443/?database=t", "https://ch:8443/?database=t", ""},
		{"scheme", "ftp://ch/?database=t", "", "scheme \"ftp\""},
		{"no host", "http:///?database=t", "", "no host"},
		{"path", "http://ch:8123/telescope", "", "path \"/telescope\""},
		{"bad database", "http://ch:8123/?database=t%3BDROP", "", "database \"t;DROP\""},
		{"unknown parameter", "http://ch:8123/?database=t&readonly=1", "", "parameter \"readonly\""},
		{"bad port hides the password", "http://u:pw-secret@ch:80x/", "", "invalid port"},
		{"control byte hides the password", "http://u:pw-secret@ch/\x7f", "", "invalid control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := ParseTarget(tc.url, "", "")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one saying %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "pw-secret") {
					t.Errorf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tg.String() != tc.want {
				t.Errorf("String() = %q, want %q", tg.String(), tc.want)
			}
		})
	}
}

func FuzzParseTarget(f *testing.F) {
	f.Add("http://u:pw@ch:8123/?database=telescope") // credentials in the URL
	f.Add("http://ch:8123/?user=u&password=pw")      // credentials as parameters
	f.Add("https://[::1]:8443/")                     // IPv6 host
	f.Add("http://u:pw@ch:99999999/%zz")             // bad port and escape
	f.Fuzz(func(t *testing.T, raw string) {
		tg, err := ParseTarget(raw, "", "pw-given")
		if err != nil {
			if strings.Contains(err.Error(), "pw-given") {
				t.Fatalf("error shows the password: %v", err)
			}
			return
		}
		if tg.password == "" || tg.password != "pw-given" {
			t.Fatalf("password %q, want the one given", tg.password)
		}
		if s := tg.String(); strings.Contains(s, "pw-given") || strings.Contains(s, "@") {
			t.Fatalf("String() %q shows credentials", s)
		}
	})
}

// TestSchemaFile: examples/clickhouse/schema.sql is the schema the exporter makes.
func TestSchemaFile(t *testing.T) {
	data, err := os.ReadFile("../../../examples/clickhouse/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range schema {
		if !bytes.Contains(data, []byte(s+";")) {
			t.Errorf("schema.sql lacks\n%s;", s)
		}
	}
}
