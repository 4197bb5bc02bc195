package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/internal/accesslog"
	"gantry/internal/ban"
	"gantry/internal/config"
	"gantry/internal/server"
	"gantry/internal/telescope"
	"gantry/internal/telescope/darkport"
	"gantry/internal/telescope/httpsensor"
)

// gantry is a whole running gantry in this process: HTTP listener, sensor, dark
// port and dashboard, all on 127.0.0.1:0.
type gantry struct {
	srv    *server.Server
	dash   *Dashboard
	sensor *httpsensor.Sensor
	dark   *darkport.Ports
	web    string // http://127.0.0.1:port of the sites
	admin  string // http://127.0.0.1:port of the dashboard
	sock   string // the admin socket
	cfg    string // path of the config file
	bans   *ban.List
	// failedLogins receives the source of every failed admin login.
	failedLogins chan netip.Addr
}

type setup struct {
	password string // "" : no login
	packets  Packets
	extra    string // more TOML, appended to the config file
	tls      bool   // serve HTTPS too, the site named localhost with the internal CA
	bans     bool   // bans on, kept in a file under the test's directory
	locate   func(netip.Addr) telescope.Location
	history  string // the history file, "" for none
}

var hashMemo = map[string]string{}

// hashFor memoises argon2id hashes: each costs tens of milliseconds.
func hashFor(t testing.TB, pw string) string {
	t.Helper()
	if h, ok := hashMemo[pw]; ok {
		return h
	}
	h, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	hashMemo[pw] = h
	return h
}

func startGantry(t testing.TB, s setup) *gantry {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "www")
	os.MkdirAll(root, 0o755)
	os.WriteFile(filepath.Join(root, "index.html"), []byte("<h1>hello</h1>\n"), 0o644)
	text := fmt.Sprintf("[server]\nlisten = [\"127.0.0.1:0\"]\naccess_log = \"off\"\n")
	if s.tls {
		text += fmt.Sprintf("tls_listen = [\"127.0.0.1:0\"]\n[tls]\nstorage = %q\n", filepath.Join(dir, "tls"))
		s.extra = "hosts = [\"localhost\"]\n" + s.extra
	}
	text += "\n[admin]\nlisten = \"127.0.0.1:0\"\n"
	if s.password != "" {
		text += fmt.Sprintf("password_hash = %q\n", hashFor(t, s.password))
	}
	text += fmt.Sprintf("\n[[site]]\nroot = %q\n%s", root, s.extra)
	cfgPath := filepath.Join(dir, "gantry.toml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	g := &gantry{cfg: cfgPath, sensor: httpsensor.New(httpsensor.Options{}), failedLogins: make(chan netip.Addr, 100)}
	ctx := context.Background()
	var gate server.Gate
	if s.bans {
		g.bans, err = ban.New(ban.Options{File: filepath.Join(dir, "state", "bans.json")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.bans.Close() })
		gate = g.bans
	}
	g.dark, err = darkport.Start(ctx, darkport.Options{Ports: []darkport.Port{{Addr: "127.0.0.1:0", Protocol: "tcp"}}, ReadTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.dark.Close() })
	g.sock = filepath.Join(dir, "run", "admin.sock")
	g.srv, err = server.New(ctx, cfg, server.Options{Version: "test", WrapListener: g.sensor.WrapListener, AdminSocket: g.sock, Gate: gate})
	if err != nil {
		t.Fatal(err)
	}
	g.dash, err = New(Options{Server: g.srv, Sensor: g.sensor, Dark: g.dark, Packets: s.packets, PasswordHash: cfg.Admin.PasswordHash, Tick: 200 * time.Millisecond,
		Bans: g.bans, LoginFailed: func(a netip.Addr) { g.failedLogins <- a }, Locate: s.locate, HistoryFile: s.history})
	if err != nil {
		t.Fatal(err)
	}
	g.srv.Observe(func(rec *accesslog.Record) {
		v := g.sensor.Observe(rec.Request, rec.Status, rec.Site, false, rec.Time.Add(rec.Duration))
		g.dash.Observe(rec, v)
	})
	addr, err := g.srv.ServeAdmin(g.dash)
	if err != nil {
		t.Fatal(err)
	}
	g.admin = "http://" + addr.String()
	g.srv.Serve()
	g.web = "http://" + g.srv.Addrs()[0].String()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		g.dash.Close()
	})
	return g
}

func (g *gantry) darkAddr() string { return strings.TrimSuffix(g.dark.Addrs()[0], "/tcp") }

// client returns an HTTP client with a cookie jar that does not follow redirects.
func client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t testing.TB, c *http.Client, method, url string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func getJSON(t testing.TB, c *http.Client, url string, v any) {
	t.Helper()
	resp, body := do(t, c, "GET", url, nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}

// sse reads server-sent events from url until stop returns true or the deadline.
func sse(t testing.TB, c *http.Client, url string, stop func(Sample) bool) []Sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("events: %s, Content-Type %q", resp.Status, ct)
	}
	var got []Sample
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var s Sample
		if err := json.Unmarshal([]byte(data), &s); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		got = append(got, s)
		if stop(s) {
			return got
		}
	}
	t.Fatalf("event stream ended (%v) after %d samples without the expected one", sc.Err(), len(got))
	return nil
}
