package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/internal/config"
	"gantry/internal/peertest"
	"gantry/internal/server"
)

// TestExportServing: a serving gantry with [telescope] export sends the scanner
// requests and dark-port hits it sees to a real ClickHouse within 10 s (the
// default 5 s batching), named by node_name. With ClickHouse stopped, requests
// are still served, the rows past the queue's bound are dropped and counted on
// the dashboard and in /metrics, no goroutine piles up, and the password is in
// no log line; when ClickHouse is back the queued rows arrive.
func TestExportServing(t *testing.T) {
	ch := peertest.StartClickHouse(t)
	const queue = 40
	exportQueue = queue
	t.Cleanup(func() { exportQueue = 0 })
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello\n"), 0o644)
	cfgPath := filepath.Join(dir, "gantry.toml")
	text := fmt.Sprintf(`[server]
listen = ["127.0.0.1:0"]
access_log = "off"

[admin]
listen = "127.0.0.1:0"

[telescope]
dark_ports = ["127.0.0.1:0/tcp", "127.0.0.1:0/udp"]
export = %q
export_user = %q
export_password = %q
node_name = "edge-test"

[[site]]
hosts = ["example.com"]
root = %q
`, ch.URL+"/?database=fleet", ch.User, ch.Password, dir)
	os.WriteFile(cfgPath, []byte(text), 0o644)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var logs peertest.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx := context.Background()
	e, err := newExtras(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(ctx, cfg, server.Options{Logger: log, Version: "test", WrapListener: e.wrapListener})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.start(ctx, srv); err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		e.close()
	})
	web, admin := srv.Addrs()[0].String(), e.adminAddr.String()
	hc := &http.Client{Timeout: 10 * time.Second}
	get := func(path, ua string) int {
		req, _ := http.NewRequest("GET", "http://"+web+path, nil)
		req.Host = "example.com"
		req.Header.Set("User-Agent", ua)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/", "Mozilla/5.0"); code != 200 {
		t.Fatalf("site: %d", code)
	}
	get("/.git/HEAD", "Mozilla/5.0 zgrab/0.x")
	get("/.env", "curl/8.0")
	for _, a := range e.dark.Addrs() {
		proto := a[strings.LastIndexByte(a, '/')+1:]
		c, err := net.Dial(proto, strings.TrimSuffix(a, "/"+proto))
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(proto + " probe"))
		c.Close()
	}

	rows := func(sql string) string {
		if strings.TrimSpace(ch.Query(t, "EXISTS TABLE fleet.http_events")) != "1" {
			return ""
		}
		return ch.Query(t, sql)
	}
	peertest.WaitFor(t, 10*time.Second, "the scanner requests and dark-port hits in ClickHouse", func() bool {
		return rows("SELECT count() FROM fleet.http_events") == "2\n" && rows("SELECT count() FROM fleet.darkport_hits") == "2\n"
	})
	if got, want := ch.Query(t, "SELECT node, source, host, method, path, user_agent, category, status FROM fleet.http_events ORDER BY path"),
		"edge-test\t127.0.0.1\texample.com\tGET\t/.env\tcurl/8.0\texploit\t404\n"+
			"edge-test\t127.0.0.1\texample.com\tGET\t/.git/HEAD\tMozilla/5.0 zgrab/0.x\texploit\t404\n"; got != want {
		t.Errorf("http_events:\n%s\nwant\n%s", got, want)
	}
	if got, want := ch.Query(t, "SELECT node, source, protocol, first_bytes FROM fleet.darkport_hits ORDER BY protocol"),
		"edge-test\t127.0.0.1\ttcp\t\"tcp probe\"\nedge-test\t127.0.0.1\tudp\t\"udp probe\"\n"; got != want {
		t.Errorf("darkport_hits:\n%s\nwant\n%s", got, want)
	}

	// ClickHouse away: serving goes on, the queue fills to its bound, the rest drop.
	ch.Stop()
	goroutines := runtime.NumGoroutine()
	const requests = 100
	for i := range requests {
		if code := get("/.env?"+strconv.Itoa(i), "zgrab"); code != 404 {
			t.Fatalf("request %d with ClickHouse stopped: %d", i, code)
		}
	}
	var tele struct {
		Export struct {
			Exported, Dropped uint64
			Queued            int
		} `json:"export"`
	}
	peertest.WaitFor(t, 10*time.Second, "the dropped rows on the dashboard", func() bool {
		resp, err := hc.Get("http://" + admin + "/api/telescope")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&tele)
		return tele.Export.Dropped == requests-queue
	})
	if tele.Export.Queued != queue || tele.Export.Exported != 4 {
		t.Errorf("dashboard export %+v, want %d queued, 4 exported", tele.Export, queue)
	}
	resp, err := hc.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{fmt.Sprintf("gantry_telescope_export_dropped_total %d\n", requests-queue),
		"gantry_telescope_export_exported_total 4\n", fmt.Sprintf("gantry_telescope_export_queued %d\n", queue)} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if n := runtime.NumGoroutine(); n > goroutines+5 {
		t.Errorf("%d goroutines, %d when ClickHouse stopped", n, goroutines)
	}
	peertest.WaitFor(t, 10*time.Second, "a failed send logged", func() bool { return strings.Contains(logs.String(), "telescope export failed") })

	ch.Restart(t)
	peertest.WaitFor(t, 90*time.Second, "the queued rows in ClickHouse after its restart", func() bool {
		return rows("SELECT count() FROM fleet.http_events WHERE node = 'edge-test'") == strconv.Itoa(2+queue)+"\n"
	})
	if strings.Contains(logs.String(), ch.Password) {
		t.Errorf("a log line shows the password:\n%s", logs.String())
	}
}

// TestAnalyzeExport: `telescope analyze --export` fills scans and attacks with
// the rows of the report it prints, under --node; a bad URL fails before the
// analysis without showing its password, and an unreachable server fails the
// command.
func TestAnalyzeExport(t *testing.T) {
	ch := peertest.StartClickHouse(t)
	host := strings.TrimPrefix(ch.URL, "http://")
	url := "http://" + ch.User + ":" + ch.Password + "@" + host + "/?database=offline"
	args := []string{"--scan-hosts", "5", td + "445_scan.pcap", "--scan-ports", "5", td + "backscatter.trace", td + "port_scan.pcap",
		"--scan-idle", "30m", "--dos-ppm", "5", "--format", "json"}
	out, errOut, code := runAnalyze(t, append(args, "--export", url, "--node", "lab-1")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(errOut, ch.Password) || !strings.Contains(errOut, "exported 4 scans and attacks to "+ch.URL+"/?database=offline") {
		t.Errorf("stderr %q", errOut)
	}
	var r struct {
		Scans []struct {
			Source, Kind, Protocol string
			Ports                  []int
			Targets, Packets       uint64
			Start, End             time.Time
		}
		Attacks []struct {
			Victim, Protocol string
			Packets          uint64
			MaxPPM           uint64  `json:"max_ppm"`
			EstPPS           float64 `json:"est_pps"`
			Start            time.Time
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Scans) == 0 || len(r.Attacks) == 0 {
		t.Fatalf("report: %v %s", err, out)
	}
	var want strings.Builder
	for _, s := range r.Scans {
		fmt.Fprintf(&want, "lab-1\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Source, s.Kind, s.Protocol, strings.ReplaceAll(fmt.Sprint(s.Ports), " ", ","),
			s.Targets, s.Packets, s.Start.UTC().Format(time.DateTime), s.End.UTC().Format(time.DateTime))
	}
	if got := ch.Query(t, "SELECT node, source, kind, protocol, ports, targets, packets, start_time, end_time FROM offline.scans ORDER BY start_time, source, protocol"); got != want.String() {
		t.Errorf("scans:\n%s\nwant\n%s", got, want.String())
	}
	want.Reset()
	for _, a := range r.Attacks {
		fmt.Fprintf(&want, "lab-1\t%s\t%s\t%d\t%d\t%.0f\t%s\n", a.Victim, a.Protocol, a.Packets, a.MaxPPM, a.EstPPS, a.Start.UTC().Format(time.DateTime))
	}
	if got := ch.Query(t, "SELECT node, victim, protocol, packets, max_ppm, round(est_pps), start_time FROM offline.attacks ORDER BY start_time, victim, protocol"); got != want.String() {
		t.Errorf("attacks:\n%s\nwant\n%s", got, want.String())
	}

	for _, tc := range []struct{ name, url, want string }{
		{"bad URL", "ftp://u:" + ch.Password + "@" + host + "/", "--export: scheme \"ftp\""},
		{"wrong password", "http://" + ch.User + ":not-" + ch.Password + "@" + host + "/?database=offline", "--export: clickhouse " + ch.URL + "/?database=offline: 401 Unauthorized: Code: 193, e.displayText() = DB::Exception: Wrong password for user writer"},
		{"no server", "http://u:" + ch.Password + "@" + peertest.FreeAddr(t) + "/", "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runAnalyze(t, td+"port_scan.pcap", "--export", tc.url)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut, tc.want)
			}
			if strings.Contains(errOut, ch.Password) {
				t.Errorf("stderr shows the password: %s", errOut)
			}
		})
	}
}
