package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/internal/config"
	"gantry/internal/dashboard"
	"gantry/internal/peertest"
	"gantry/internal/server"
	"gantry/internal/telescope/geoip/geoiptest"
)

func TestHashPasswordCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"hash-password"}, strings.NewReader("a long passphrase\n"), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	h := strings.TrimSpace(out.String())
	if !strings.HasPrefix(h, "$argon2id$") {
		t.Fatalf("hash = %q", h)
	}
	// the hash is what [admin] password_hash takes: a config with it and a public
	// admin address is valid
	cfg := &config.Config{Admin: config.Admin{Listen: "0.0.0.0:2020", PasswordHash: h}, Sites: []config.Site{{Root: t.TempDir()}}}
	if err := cfg.Complete(); err != nil {
		t.Fatalf("config with the hash: %v", err)
	}
	out.Reset()
	errb.Reset()
	if code := Main([]string{"hash-password"}, strings.NewReader(""), &out, &errb); code != 1 || !strings.Contains(errb.String(), "no password on stdin") {
		t.Fatalf("empty stdin: exit %d, %q", code, errb.String())
	}

	// --htpasswd: a line that a route's auth file takes, and that lets the user in.
	out.Reset()
	errb.Reset()
	if code := Main([]string{"hash-password", "--htpasswd", "ada lovelace"}, strings.NewReader("a long passphrase\n"), &out, &errb); code != 0 {
		t.Fatalf("--htpasswd: exit %d: %s", code, errb.String())
	}
	line := out.String()
	if !strings.HasPrefix(line, "ada lovelace:$2a$10$") {
		t.Fatalf("--htpasswd line = %q", line)
	}
	dir := t.TempDir()
	pwfile := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(pwfile, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "gantry.toml")
	if err := os.WriteFile(cfgFile, []byte("[[site]]\nroot = \"."+"\"\nauth = \"htpasswd\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(cfgFile); err != nil {
		t.Fatalf("a config with the line's file: %v", err)
	}
	for _, bad := range []struct{ name, user, stdin, want string }{
		{"a colon in the name", "a:b", "pw\n", "without colons"},
		{"a password bcrypt would cut", "ada", strings.Repeat("x", 73) + "\n", "longer than 72 bytes"},
	} {
		out.Reset()
		errb.Reset()
		if code := Main([]string{"hash-password", "--htpasswd", bad.user}, strings.NewReader(bad.stdin), &out, &errb); code != 1 || !strings.Contains(errb.String(), bad.want) {
			t.Errorf("%s: exit %d, %q; want 1 and %q", bad.name, code, errb.String(), bad.want)
		}
	}
}

// TestExtras runs a whole gantry as `gantry serve -c` does: HTTP sensor on the
// listener, a dark port, the dashboard, and `gantry reload` against it.
func TestExtras(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello\n"), 0o644)
	cfgPath := filepath.Join(dir, "gantry.toml")
	country, asn := geoiptest.Write(t, dir, []geoiptest.Network{{CIDR: "198.51.100.0/24", Country: "NL", ASN: 64500, ASOrg: "x"}})
	text := fmt.Sprintf(`[server]
listen = ["127.0.0.1:0"]
access_log = "off"

[admin]
listen = "127.0.0.1:0"

[telescope]
dark_ports = ["127.0.0.1:0/tcp", "127.0.0.1:0/udp"]
geoip = [%q, %q]

[[site]]
hosts = ["example.com"]
root = %q
`, country, asn, dir)
	os.WriteFile(cfgPath, []byte(text), 0o644)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	e, err := newExtras(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "admin.sock")
	srv, err := server.New(ctx, cfg, server.Options{Logger: log, Version: "test", WrapListener: e.wrapListener, AdminSocket: sock})
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
	web := srv.Addrs()[0].String()
	admin := e.adminAddr.String()

	get := func(host, path string) int {
		req, _ := http.NewRequest("GET", "http://"+web+path, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("example.com", "/"); code != 200 {
		t.Fatalf("site: %d", code)
	}
	get("example.com", "/.git/HEAD")  // exploit
	get("203.0.113.1", "/")           // IP-literal Host on a named site
	get("unknown.example", "/robots") // unknown Host

	var tele struct {
		HTTP struct {
			UnsolicitedTotal uint64            `json:"unsolicited_total"`
			Categories       map[string]uint64 `json:"categories"`
		} `json:"http"`
		DarkPorts struct {
			Listening []string `json:"listening"`
			HitsTotal uint64   `json:"hits_total"`
			Sources   []struct {
				Protocol, Rule, Detail string
			} `json:"sources"`
		} `json:"dark_ports"`
	}
	fetch := func() {
		resp, err := http.Get("http://" + admin + "/api/telescope")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&tele); err != nil {
			t.Fatal(err)
		}
	}
	fetch()
	if tele.HTTP.UnsolicitedTotal != 3 || tele.HTTP.Categories["exploit"] != 1 || tele.HTTP.Categories["probe"] != 2 {
		t.Fatalf("http sensor: %+v", tele.HTTP)
	}
	if len(tele.DarkPorts.Listening) != 2 {
		t.Fatalf("dark ports: %+v", tele.DarkPorts)
	}
	c, err := net.Dial("tcp", strings.TrimSuffix(tele.DarkPorts.Listening[0], "/tcp"))
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("login: root\n"))
	c.Close()
	// a CVE-2024-47176 packet to the UDP dark port: named, with its callback URL
	u, err := net.Dial("udp", strings.TrimSuffix(tele.DarkPorts.Listening[1], "/udp"))
	if err != nil {
		t.Fatal(err)
	}
	u.Write([]byte("0 3 http://198.51.100.7:631/printers/x\n"))
	u.Close()
	peertest.WaitFor(t, 10*time.Second, "the dark port hits", func() bool { fetch(); return tele.DarkPorts.HitsTotal >= 2 })
	if tele.DarkPorts.HitsTotal != 2 {
		t.Fatalf("dark port hits: %d", tele.DarkPorts.HitsTotal)
	}
	named := false
	for _, s := range tele.DarkPorts.Sources {
		named = named || (s.Protocol == "udp" && s.Rule == "cups-browsed" && s.Detail == "http://198.51.100.7:631/printers/x")
	}
	if !named {
		t.Fatalf("the CUPS packet is not named: %+v", tele.DarkPorts.Sources)
	}

	// gantry reload, as a user types it
	var out bytes.Buffer
	if err := reload([]string{"--admin", admin, "--socket", sock}, &out); err != nil || !strings.HasPrefix(out.String(), "reloaded: 1 site, ") {
		t.Fatalf("gantry reload: %v %s", err, out.String())
	}
	if st := srv.Status(); !st.LastReload.OK {
		t.Fatalf("last reload: %+v", st.LastReload)
	}
}

// TestExtrasLiveCapture starts the packet telescope on the loopback interface and
// finds its report on the dashboard.
func TestExtrasLiveCapture(t *testing.T) {
	if os.Geteuid() != 0 {
		peertest.Missing(t, "CAP_NET_RAW", "live capture needs root")
	}
	dir := t.TempDir()
	cfg := &config.Config{
		Server:    config.Server{Listen: []string{"127.0.0.1:0"}, AccessLog: "off"},
		Admin:     config.Admin{Listen: "127.0.0.1:0"},
		Telescope: config.Telescope{Interface: "lo", ScanHosts: 5},
		Sites:     []config.Site{{Root: dir}},
	}
	if err := cfg.Complete(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	e, _ := newExtras(cfg, log)
	srv, err := server.New(ctx, cfg, server.Options{Logger: log, WrapListener: e.wrapListener})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.start(ctx, srv); err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		e.close()
	})
	var tele struct {
		Packets *struct {
			Packets uint64 `json:"packets"`
		} `json:"packets"`
		Interface string `json:"interface"`
	}
	resp, err := http.Get("http://" + e.adminAddr.String() + "/api/telescope")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&tele); err != nil {
		t.Fatal(err)
	}
	if tele.Packets == nil || tele.Interface != "lo" {
		t.Fatalf("no packet report on the dashboard: %+v", tele)
	}
}

// With a password set, `gantry reload` gets in through the admin socket (the
// kernel vouches for its user); without the socket, the TCP admin address
// answers 401 and the error says how to do it right.
func TestReloadNeedsSocketOrPassword(t *testing.T) {
	dir := t.TempDir()
	hash, err := dashboard.HashPassword("a long passphrase")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "gantry.toml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("[server]\nlisten = [\"127.0.0.1:0\"]\naccess_log = \"off\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\npassword_hash = %q\n\n[[site]]\nroot = %q\n", hash, dir)), 0o644)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	e, err := newExtras(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "admin.sock")
	srv, err := server.New(ctx, cfg, server.Options{Logger: log, Version: "test", AdminSocket: sock,
		BeforeBuild: func(srv *server.Server) error { return e.start(ctx, srv) }})
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		e.close()
		if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("admin socket left behind after shutdown: %v", err)
		}
	})
	admin := e.adminAddr.String()

	var out bytes.Buffer
	if err := reload([]string{"--admin", admin, "--socket", sock}, &out); err != nil || !strings.HasPrefix(out.String(), "reloaded: 1 site, ") {
		t.Fatalf("gantry reload through the socket: %v %s", err, out.String())
	}
	err = reload([]string{"--admin", admin, "--socket", filepath.Join(dir, "none.sock")}, &out)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "run `gantry reload` as the user gantry runs as") {
		t.Fatalf("gantry reload over TCP to a gantry with a password: %v", err)
	}
}
