package dashboard

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

type bansReply struct {
	Enabled bool `json:"enabled"`
	Bans    []struct {
		Source, Rule, Sample string
		Strikes              int
	} `json:"bans"`
	Error string `json:"error"`
}

// TestBansAPI: GET /api/bans lists the bans; POST bans and unbans, only with
// the dashboard's CSRF token or the CLI header, never a loopback or private
// source, and with a clear 4xx for a bad body; /metrics shows the gauges.
func TestBansAPI(t *testing.T) {
	g := startGantry(t, setup{bans: true})
	c := client()
	var sess struct{ CSRF string }
	getJSON(t, c, g.admin+"/api/session", &sess)
	token := map[string]string{"X-CSRF-Token": sess.CSRF, "Content-Type": "application/json"}
	steps := []struct {
		name   string
		body   string
		hdr    map[string]string
		status int
		errHas string
	}{
		{"no token", `{"action":"ban","source":"203.0.113.9"}`, map[string]string{"Content-Type": "application/json"}, 403, "cross-site"},
		{"foreign origin", `{"action":"ban","source":"203.0.113.9"}`, map[string]string{"X-CSRF-Token": sess.CSRF, "Origin": "http://evil.example"}, 403, "cross-site"},
		{"ban", `{"action":"ban","source":"203.0.113.9","duration":"1h","reason":"seen probing ssh"}`, token, 200, ""},
		{"ban an IPv6 unit from the CLI", `{"action":"ban","source":"2001:db8:4:5::/64"}`, map[string]string{"X-Gantry-CLI": "1"}, 200, ""},
		{"loopback is never banned", `{"action":"ban","source":"127.0.0.1"}`, token, 422, "never banned"},
		{"private is never banned", `{"action":"ban","source":"192.168.1.20"}`, token, 422, "never banned"},
		{"a range", `{"action":"ban","source":"203.0.113.0/24"}`, token, 400, "not to another range"},
		{"an IPv6 /48", `{"action":"ban","source":"2001:db8:42::/48"}`, token, 200, ""},
		{"unban the /48", `{"action":"unban","source":"2001:db8:42::/48"}`, token, 200, ""},
		{"a /56 is no unit", `{"action":"ban","source":"2001:db8:42::/56"}`, token, 400, "not to another range"},
		{"bad duration", `{"action":"ban","source":"203.0.113.10","duration":"forever"}`, token, 400, "duration forever"},
		{"unknown field", `{"action":"ban","source":"203.0.113.10","until":"x"}`, token, 400, "unknown field"},
		{"not json", `action=ban&source=203.0.113.10`, token, 400, "want a JSON body"},
		{"unknown action", `{"action":"kick","source":"203.0.113.10"}`, token, 400, "want \"ban\" or \"unban\""},
		{"unban", `{"action":"unban","source":"2001:db8:4:5::1"}`, token, 200, ""},
		{"unban again", `{"action":"unban","source":"2001:db8:4:5::1"}`, token, 404, "no ban"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			resp, body := do(t, c, "POST", g.admin+"/api/bans", strings.NewReader(st.body), st.hdr)
			var r bansReply
			json.Unmarshal([]byte(body), &r)
			if resp.StatusCode != st.status || !strings.Contains(r.Error, st.errHas) {
				t.Fatalf("%s: %s", resp.Status, body)
			}
		})
	}
	var list bansReply
	getJSON(t, c, g.admin+"/api/bans", &list)
	if !list.Enabled || len(list.Bans) != 1 || list.Bans[0].Source != "203.0.113.9/32" || list.Bans[0].Rule != "manual" || list.Bans[0].Sample != "seen probing ssh" {
		t.Fatalf("bans %+v", list)
	}
	if !g.bans.Banned(netip.MustParseAddr("203.0.113.9")) || g.bans.Banned(netip.MustParseAddr("2001:db8:4:5::1")) {
		t.Fatal("the list does not match the API")
	}
	_, metrics := do(t, c, "GET", g.admin+"/metrics", nil, nil)
	for _, want := range []string{`gantry_bans{state="active"} 1`, `gantry_bans_issued_total{rule="manual"} 3`, "gantry_bans_refused_connections_total 0",
		"gantry_bans_refused_requests_total 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestBansOff: without bans the API says so, and POST is refused with the fix.
func TestBansOff(t *testing.T) {
	g := startGantry(t, setup{})
	c := client()
	var list bansReply
	getJSON(t, c, g.admin+"/api/bans", &list)
	if list.Enabled {
		t.Fatal("bans on")
	}
	resp, body := do(t, c, "POST", g.admin+"/api/bans", strings.NewReader(`{"action":"ban","source":"203.0.113.9"}`), map[string]string{"X-Gantry-CLI": "1"})
	if resp.StatusCode != 409 || !strings.Contains(body, "[telescope.ban] enabled = true") {
		t.Fatalf("%s: %s", resp.Status, body)
	}
}

// TestFailedLoginsReported: wrong passwords on the form and in Basic
// credentials are reported with their source; a right one is not.
func TestFailedLoginsReported(t *testing.T) {
	g := startGantry(t, setup{password: "s3cret-pw", bans: true})
	c := client()
	do(t, c, "POST", g.admin+"/login", strings.NewReader("password=wrong"), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	resp, _ := do(t, c, "GET", g.admin+"/api/bans", nil, map[string]string{"Authorization": "Basic eDp3cm9uZw=="}) // x:wrong
	if resp.StatusCode != 401 {
		t.Fatalf("wrong Basic credentials: %s", resp.Status)
	}
	do(t, c, "POST", g.admin+"/login", strings.NewReader("password=s3cret-pw"), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	for i := range 2 {
		if a := <-g.failedLogins; a != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("failure %d from %s", i, a)
		}
	}
	select {
	case a := <-g.failedLogins:
		t.Fatalf("a third failure from %s: the right password counted", a)
	default:
	}
}
