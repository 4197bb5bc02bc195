package dashboard

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gantry/internal/adminsock"
	"gantry/internal/server"
	"gantry/internal/telescope"
	"gantry/internal/telescope/geoip"
	"gantry/internal/telescope/geoip/geoiptest"
	"gantry/internal/telescope/httpsensor"

	"gantry/internal/peertest"
)

func TestStatusAndLog(t *testing.T) {
	g := startGantry(t, setup{})
	c := client()
	do(t, c, "GET", g.web+"/", nil, nil)
	do(t, c, "GET", g.web+"/nope", nil, nil)
	do(t, c, "GET", g.web+"/.git/config", nil, nil)

	var st server.Status
	getJSON(t, c, g.admin+"/api/status", &st)
	if st.Version != "test" || st.RequestsTotal != 3 || st.UptimeS <= 0 || len(st.Sites) != 1 ||
		st.Sites[0].Routes[0].Kind != "static" || st.Pools == nil {
		t.Fatalf("status = %+v", st)
	}

	var log []LogEntry
	getJSON(t, c, g.admin+"/api/log", &log)
	if len(log) != 3 {
		t.Fatalf("log has %d entries", len(log))
	}
	// newest first, each tagged by the sensor
	if log[0].URI != "/.git/config" || log[0].Status != 404 || log[0].Category != httpsensor.Exploit || log[0].Rule != "vcs-metadata" {
		t.Fatalf("newest = %+v", log[0])
	}
	if log[1].URI != "/nope" || log[1].Category != "" || log[2].URI != "/" || log[2].Status != 200 {
		t.Fatalf("log = %+v", log)
	}
	// after= returns only newer entries
	do(t, c, "GET", g.web+"/again", nil, nil)
	var newer []LogEntry
	getJSON(t, c, g.admin+"/api/log?after="+strconv.FormatUint(log[0].Seq, 10), &newer)
	if len(newer) != 1 || newer[0].URI != "/again" {
		t.Fatalf("after: %+v", newer)
	}
}

func TestTelescopeAPI(t *testing.T) {
	g := startGantry(t, setup{})
	c := client()
	do(t, c, "GET", g.web+"/.env", nil, nil)
	do(t, c, "GET", g.web+"/", nil, map[string]string{"User-Agent": "${jndi:ldap://x.example/a}"})
	// a TLS ClientHello on the plain-HTTP port
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.web, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	conn.Read(make([]byte, 100))
	conn.Close()
	// a dark port hit
	dc, err := net.Dial("tcp", g.darkAddr())
	if err != nil {
		t.Fatal(err)
	}
	dc.Write([]byte("SSH-2.0-libssh_0.9.6\r\n"))
	dc.Close()

	var ts struct {
		HTTP struct {
			UnsolicitedTotal uint64            `json:"unsolicited_total"`
			Categories       map[string]uint64 `json:"categories"`
			Sources          []struct {
				Source      string            `json:"source"`
				Requests    uint64            `json:"requests"`
				Categories  map[string]uint64 `json:"categories"`
				SamplePaths []string          `json:"sample_paths"`
			} `json:"sources"`
		} `json:"http"`
		DarkPorts struct {
			HitsTotal uint64 `json:"hits_total"`
			Sources   []struct {
				Source, Protocol, FirstBytes string `json:"-"`
				Port                         int    `json:"port"`
				Hits                         uint64 `json:"hits"`
				FB                           string `json:"first_bytes"`
				Rule                         string `json:"rule"`
				Detail                       string `json:"detail"`
			} `json:"sources"`
		} `json:"dark_ports"`
		Packets *telescope.Report `json:"packets"`
	}
	peertest.WaitFor(t, 10*time.Second, "3 unsolicited requests and a dark port hit", func() bool {
		getJSON(t, c, g.admin+"/api/telescope", &ts)
		return ts.HTTP.UnsolicitedTotal >= 3 && ts.DarkPorts.HitsTotal >= 1
	})
	h := ts.HTTP
	if h.UnsolicitedTotal != 3 || h.Categories["exploit"] != 2 || h.Categories["probe"] != 1 || len(h.Sources) != 1 ||
		h.Sources[0].Source != "127.0.0.1" || h.Sources[0].Requests != 3 {
		t.Fatalf("http = %+v", h)
	}
	if ts.DarkPorts.HitsTotal != 1 || len(ts.DarkPorts.Sources) != 1 || ts.DarkPorts.Sources[0].FB != `"SSH-2.0-libssh_0.9.6\r\n"` ||
		ts.DarkPorts.Sources[0].Rule != "ssh-banner" || ts.DarkPorts.Sources[0].Detail != "SSH-2.0-libssh_0.9.6" {
		t.Fatalf("dark = %+v", ts.DarkPorts)
	}
	if ts.Packets != nil {
		t.Fatalf("packets without capture: %+v", ts.Packets)
	}
}

// fakePackets stands in for a live capture (which needs CAP_NET_RAW): its counters
// grow as a capture's would, and like (*telescope.Live).Snapshot it is safe for
// concurrent use.
type fakePackets struct{ n atomic.Uint64 }

func (f *fakePackets) Snapshot() telescope.Report {
	n := f.n.Add(10)
	return telescope.Report{Packets: n * 3, Classes: telescope.Classes{Backscatter: n, Scan: n, Other: n},
		Thresholds: telescope.NewClassifier(telescope.Options{}).Report().Thresholds}
}

func TestEvents(t *testing.T) {
	g := startGantry(t, setup{packets: &fakePackets{}})
	c := client()
	stopLoad := make(chan struct{})
	defer close(stopLoad)
	go func() {
		for {
			select {
			case <-stopLoad:
				return
			default:
			}
			for _, p := range []string{"/", "/missing", "/.env"} {
				if resp, err := http.Get(g.web + p); err == nil {
					resp.Body.Close()
				}
			}
			if dc, err := net.Dial("tcp", g.darkAddr()); err == nil {
				dc.Close()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	got := sse(t, c, g.admin+"/api/events", func(s Sample) bool {
		return s.Requests["2xx"] > 0 && s.Requests["4xx"] > 0 && s.Unsolicited > 0 && s.Dark > 0 && s.Packets["scan"] > 0 && s.P99MS > 0
	})
	last := got[len(got)-1]
	if last.Time == 0 || last.RPS < last.Requests["2xx"] || last.P50MS > last.P99MS {
		t.Fatalf("sample = %+v", last)
	}
	found := false
	for _, a := range last.Alerts {
		found = found || a.Kind == "attack"
	}
	if !found {
		t.Fatalf("no attack alert with exploits coming in: %+v", last.Alerts)
	}
	var hist []Sample
	getJSON(t, c, g.admin+"/api/history", &hist)
	if len(hist) < len(got) {
		t.Fatalf("history has %d samples, the stream sent %d", len(hist), len(got))
	}
}

func TestMetrics(t *testing.T) {
	g := startGantry(t, setup{packets: &fakePackets{}})
	c := client()
	do(t, c, "GET", g.web+"/", nil, nil)
	do(t, c, "GET", g.web+"/wp-login.php", nil, nil)
	dc, err := net.Dial("tcp", g.darkAddr())
	if err != nil {
		t.Fatal(err)
	}
	dc.Write([]byte{0xff, 0xfb, 24}) // Telnet: WILL TTYPE
	dc.Close()
	peertest.WaitFor(t, 10*time.Second, "the dark port hit", func() bool { return g.dark.Total() == 1 })
	resp, body := do(t, c, "GET", g.admin+"/metrics", nil, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`gantry_http_requests_total{code="200",route="/",site="default"} 1`,
		`gantry_http_requests_total{code="404",route="/",site="default"} 1`,
		`gantry_http_request_duration_seconds_count{route="/",site="default"} 2`,
		`gantry_telescope_http_unsolicited_total{category="exploit",rule="wordpress"} 1`,
		`gantry_telescope_packets_total{class="backscatter"}`,
		`gantry_telescope_evicted_total{sensor="http"} 0`,
		`gantry_telescope_darkport_probes_total{category="probe",rule="telnet-negotiation"} 1`,
		`gantry_telescope_darkport_probes_total{category="exploit",rule="cups-browsed"} 0`,
		"go_goroutines",
		"process_open_fds",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestReload(t *testing.T) {
	g := startGantry(t, setup{})
	c := client()
	// what `gantry reload` sends
	resp, body := do(t, c, "POST", g.admin+"/api/reload", nil, map[string]string{"X-Gantry-CLI": "1"})
	if resp.StatusCode != 200 || !strings.Contains(body, `"ok":true`) {
		t.Fatalf("reload: %s %s", resp.Status, body)
	}
	// a broken config: the reload fails, says why, and the old config keeps serving
	text, _ := os.ReadFile(g.cfg)
	os.WriteFile(g.cfg, append(text, []byte("\n[[site.route]]\npath = \"/x/\"\nbogus = 1\n")...), 0o644)
	resp, body = do(t, c, "POST", g.admin+"/api/reload", nil, map[string]string{"X-Gantry-CLI": "1"})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "bogus") {
		t.Fatalf("bad reload: %s %s", resp.Status, body)
	}
	if r, _ := do(t, c, "GET", g.web+"/", nil, nil); r.StatusCode != 200 {
		t.Fatalf("site after failed reload: %s", r.Status)
	}
	var cfg struct {
		File       string              `json:"file"`
		Text       string              `json:"text"`
		LastReload server.ReloadResult `json:"last_reload"`
	}
	getJSON(t, c, g.admin+"/api/config", &cfg)
	if cfg.File != g.cfg || !strings.Contains(cfg.Text, "[[site]]") || cfg.LastReload.OK || !strings.Contains(cfg.LastReload.Error, "bogus") {
		t.Fatalf("config = %+v", cfg)
	}
}

func TestCSRFWithoutPassword(t *testing.T) {
	g := startGantry(t, setup{})
	c := client()
	var sess struct {
		LoginRequired bool   `json:"login_required"`
		CSRF          string `json:"csrf"`
	}
	getJSON(t, c, g.admin+"/api/session", &sess)
	if sess.LoginRequired || sess.CSRF == "" {
		t.Fatalf("session = %+v", sess)
	}
	cases := []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"plain form post from anywhere", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 403},
		{"wrong token", map[string]string{"X-CSRF-Token": "nope"}, 403},
		{"token from a foreign origin", map[string]string{"X-CSRF-Token": sess.CSRF, "Origin": "http://evil.example"}, 403},
		{"token, cross-site fetch", map[string]string{"X-CSRF-Token": sess.CSRF, "Sec-Fetch-Site": "cross-site"}, 403},
		{"token, sandboxed frame (null origin)", map[string]string{"X-CSRF-Token": sess.CSRF, "Origin": "null", "Sec-Fetch-Site": "cross-site"}, 403},
		{"token, null origin without fetch metadata", map[string]string{"X-CSRF-Token": sess.CSRF, "Origin": "null"}, 403},
		{"token, same origin", map[string]string{"X-CSRF-Token": sess.CSRF, "Origin": g.admin, "Sec-Fetch-Site": "same-origin"}, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, c, "POST", g.admin+"/api/reload", nil, tc.hdr)
			if resp.StatusCode != tc.want {
				t.Fatalf("%s: %s", resp.Status, body)
			}
		})
	}
	// DNS rebinding: a foreign name pointed at 127.0.0.1 gets nothing
	req, _ := http.NewRequest("GET", g.admin+"/api/config", nil)
	req.Host = "rebind.evil.example"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("foreign Host: %s", resp.Status)
	}
}

func TestLogin(t *testing.T) {
	g := startGantry(t, setup{password: "correct horse battery staple"})
	c := client()
	// every endpoint, the traffic's (attacker-chosen URLs and client addresses) too
	for _, path := range []string{"/api/status", "/api/routes", "/api/top", "/api/top?n=128", "/api/history",
		"/api/history?range=7d", "/api/events", "/api/log", "/api/alerts", "/api/telescope", "/api/config", "/api/bans"} {
		if resp, body := do(t, c, "GET", g.admin+path, nil, nil); resp.StatusCode != 401 || strings.Contains(body, "[") {
			t.Errorf("%s without login: %s %.100s", path, resp.Status, body)
		}
	}
	if resp, _ := do(t, c, "GET", g.admin+"/", nil, nil); resp.StatusCode != 303 || resp.Header.Get("Location") != "/login" {
		t.Fatalf("page without login: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	if resp, _ := do(t, c, "GET", g.admin+"/metrics", nil, nil); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("metrics without login: %s", resp.Status)
	}
	if resp, _ := do(t, c, "GET", g.admin+"/login", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("login page: %s", resp.Status)
	}
	form := func(pw string) *strings.Reader { return strings.NewReader(url.Values{"password": {pw}}.Encode()) }
	ct := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	resp, _ := do(t, c, "POST", g.admin+"/login", form("wrong"), ct)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/login?error=bad" {
		t.Fatalf("wrong password: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	resp, _ = do(t, c, "POST", g.admin+"/login", form("correct horse battery staple"), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"})
	if resp.StatusCode != 403 {
		t.Fatalf("cross-site login: %s", resp.Status)
	}
	resp, _ = do(t, c, "POST", g.admin+"/login", form("correct horse battery staple"), ct)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" {
		t.Fatalf("session cookie = %+v", cookie)
	}
	var st server.Status
	getJSON(t, c, g.admin+"/api/status", &st)
	var sess struct {
		CSRF string `json:"csrf"`
	}
	getJSON(t, c, g.admin+"/api/session", &sess)
	if r, _ := do(t, c, "POST", g.admin+"/api/reload", nil, nil); r.StatusCode != 403 {
		t.Fatalf("reload without token: %s", r.Status)
	}
	if r, b := do(t, c, "POST", g.admin+"/api/reload", nil, map[string]string{"X-CSRF-Token": sess.CSRF}); r.StatusCode != 200 {
		t.Fatalf("reload with token: %s %s", r.Status, b)
	}
	// Prometheus scrapes with basic_auth
	req, _ := http.NewRequest("GET", g.admin+"/metrics", nil)
	req.SetBasicAuth("prometheus", "correct horse battery staple")
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 200 {
		t.Fatalf("metrics with basic auth: %v %v", r, err)
	} else {
		r.Body.Close()
	}
	// loopback proves nothing about who asks: with a password, a reload from
	// there needs it too, and the answer says how gantry reload gets in
	for _, hdr := range []map[string]string{nil, {"X-Gantry-CLI": "1"}} {
		if r, b := do(t, client(), "POST", g.admin+"/api/reload", nil, hdr); r.StatusCode != 401 || !strings.Contains(b, "run `gantry reload` as the user gantry runs as") {
			t.Fatalf("reload from loopback without credentials (%v): %s %s", hdr, r.Status, b)
		}
	}
	// the admin socket's peer is gantry's own user: no password
	if r, b := do(t, adminsock.Client(g.sock, 30*time.Second), "POST", "http://localhost/api/reload", nil, nil); r.StatusCode != 200 {
		t.Fatalf("reload through the admin socket: %s %s", r.Status, b)
	}
	// log out ends the session
	do(t, c, "POST", g.admin+"/logout", nil, map[string]string{"X-CSRF-Token": sess.CSRF})
	if r, _ := do(t, c, "GET", g.admin+"/api/status", nil, nil); r.StatusCode != 401 {
		t.Fatalf("status after logout: %s", r.Status)
	}
}

func TestLoginRateLimit(t *testing.T) {
	g := startGantry(t, setup{password: "s3cret-s3cret"})
	c := client()
	ct := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	var last *http.Response
	for i := 0; i < loginBurst+1; i++ {
		last, _ = do(t, c, "POST", g.admin+"/login", strings.NewReader("password=guess"), ct)
	}
	if !strings.HasPrefix(last.Header.Get("Location"), "/login?error=wait") || last.Header.Get("Retry-After") == "" {
		t.Fatalf("attempt %d: %s %v", loginBurst+1, last.Status, last.Header)
	}
	// even the right password waits: a guesser cannot tell
	r, _ := do(t, c, "POST", g.admin+"/login", strings.NewReader("password=s3cret-s3cret"), ct)
	if !strings.HasPrefix(r.Header.Get("Location"), "/login?error=wait") {
		t.Fatalf("right password while limited: %s", r.Header.Get("Location"))
	}
}

func TestShutdownEndsEventStreams(t *testing.T) {
	g := startGantry(t, setup{})
	resp, err := http.Get(g.admin + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- g.srv.Shutdown(ctx)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown waits for an open event stream")
	}
}

// reportPackets is a live capture's report with one scan and one attack.
type reportPackets struct{ r telescope.Report }

func (p reportPackets) Snapshot() telescope.Report {
	r := p.r
	r.Scans = slices.Clone(r.Scans)
	r.Attacks = slices.Clone(r.Attacks)
	return r
}

// TestTelescopeLocated: with [telescope] geoip, /api/telescope carries the country
// and AS of scanners and victims, and the attack details, and the telescope tab
// shows them.
func TestTelescopeLocated(t *testing.T) {
	country, asn := geoiptest.Write(t, t.TempDir(), []geoiptest.Network{
		{CIDR: "198.51.100.0/24", Country: "NL", ASN: 64500, ASOrg: "Example Scanner BV"},
		{CIDR: "203.0.113.0/24", Country: "JP", ASN: 64501, ASOrg: "Victim KK"},
	})
	db, err := geoip.Open([]string{country, asn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	g := startGantry(t, setup{locate: db.Lookup, packets: reportPackets{telescope.Report{
		Assumption: "a telescope of n = 256 IPv4 addresses (dark prefixes)",
		Scans:      []telescope.Scan{{Source: "198.51.100.9", Kind: "horizontal", Protocol: "tcp", Ports: []uint16{23}, Targets: 256, Packets: 256, Start: start, End: start}},
		Attacks: []telescope.Attack{{Victim: "203.0.113.80", Protocol: "tcp", Packets: 3000, Start: start, End: start.Add(time.Hour),
			Duration: 3600, MeanPPS: 0.83, PeakPPS: 2.5, EstPPS: 13981013.3, EstPeakPPS: 41943040,
			Services: []telescope.Service{{Port: 443, Packets: 2900}, {Port: 80, Packets: 100}}}},
	}}})
	var ts struct {
		Packets telescope.Report `json:"packets"`
	}
	getJSON(t, client(), g.admin+"/api/telescope", &ts)
	if len(ts.Packets.Scans) != 1 || ts.Packets.Scans[0].Location != (telescope.Location{Country: "NL", ASN: 64500, ASOrg: "Example Scanner BV"}) {
		t.Fatalf("scans %+v", ts.Packets.Scans)
	}
	a := ts.Packets.Attacks
	if len(a) != 1 || a[0].Location != (telescope.Location{Country: "JP", ASN: 64501, ASOrg: "Victim KK"}) ||
		len(a[0].Services) != 2 || a[0].Services[0].Port != 443 || a[0].Duration != 3600 || a[0].PeakPPS != 2.5 {
		t.Fatalf("attacks %+v", a)
	}

	ctx := browser(t)
	run(t, ctx, chromedp.Navigate(g.admin+"/"), chromedp.WaitVisible(chromedp.CSS(`button[data-tab="telescope"]`)),
		chromedp.Click(chromedp.CSS(`button[data-tab="telescope"]`)))
	waitJS(t, ctx, "located attack row", `(r => r && ["JP AS64501 Victim KK", "443:2900, 80:100", "1 h", "0.83 / 2.50"].every(s => r.textContent.includes(s)))(document.querySelector("#t-attacks tbody tr"))`)
	waitJS(t, ctx, "located scan row", `document.querySelector("#t-scans tbody").textContent.includes("NL AS64500 Example Scanner BV")`)
	waitJS(t, ctx, "the estimate's assumption", `document.getElementById("t-assumption").textContent.includes("n = 256")`)
}
