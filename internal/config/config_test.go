package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/internal/config"
	"gantry/internal/fastcgi"
	_ "gantry/internal/server" // registers the handler kinds
	"gantry/internal/telescope/geoip/geoiptest"
	"gantry/internal/wsgi"
)

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		toml string
		want []string // each must appear in the error text
	}{
		{"unknown key with line", "[server]\nlisten = [\"127.0.0.1:0\"]\nlistn = 1\n", []string{"cfg.toml:3: unknown key \"listn\" in [server] (did you mean \"listen\"?)"}},
		{"misplaced key", "[admin]\nmax_body = \"1MB\"\n", []string{"cfg.toml:2: unknown key \"max_body\" in [admin] (it belongs in [server])"}},
		{"type mismatch has a line", "[server]\n\nidle_timeout = 5\n", []string{"cfg.toml:3:"}},
		{"bad duration", "[server]\nidle_timeout = \"5 minutes\"\n", []string{"cfg.toml:2:", "invalid duration"}},
		{"key not for handler", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/\"\n  static = \"" + dir + "\"\n  threads = 4\n", []string{"cfg.toml:6: key \"threads\" does not apply to a static route", "it applies to: wsgi"}},
		{"fastcgi_command keys need the command", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"*.php\"\n  fastcgi = \"127.0.0.1:9000\"\n  processes = 2\n", []string{"cfg.toml:6: key \"processes\" applies only with fastcgi_command"}},
		{"no handler", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/x\"\n", []string{"cfg.toml:3: route \"/x\" has no handler"}},
		{"two handlers", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/x\"\n  proxy = \"http://127.0.0.1:1\"\n  static = \"" + dir + "\"\n", []string{"sets several handlers (static, proxy)"}},
		{"all errors at once", "[server]\nlog_format = \"xml\"\n[admin]\nlisten = \"0.0.0.0:2020\"\n[[site]]\nroot = \"/nonexistent/gantry\"\n", []string{"cfg.toml:2: [server] log_format", "cfg.toml:4: [admin] listen \"0.0.0.0:2020\" is not loopback", "site root \"/nonexistent/gantry\": no such file or directory"}},
		{"bad route path", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"php\"\n  static = \"" + dir + "\"\n", []string{"cfg.toml:4: route path \"php\""}},
		{"two default sites", "[[site]]\nroot = \"" + dir + "\"\n[[site]]\nroot = \"" + dir + "\"\n", []string{"two sites without hosts"}},
		{"did you mean a server key", "[server]\nfast_pth = false\n", []string{"cfg.toml:2: unknown key \"fast_pth\" in [server] (did you mean \"fast_path\"?)"}},
		{"did you mean a route key", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/\"\n  wsgi = \"app\"\n  request_bufering = false\n", []string{"cfg.toml:6: unknown key \"request_bufering\" in [site.route] (did you mean \"request_buffering\"?)"}},
		{"route value of the wrong type at its line", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/\"\n  wsgi = \"app\"\n  processes = \"two\"\n  [[site.route]]\n  path = \"/x/\"\n  wsgi = \"app\"\n  processes = 3\n", []string{"cfg.toml:6: key \"processes\": TOML value has type string; want integer"}},
		{"bad route duration", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/\"\n  proxy = \"http://127.0.0.1:1\"\n  timeout = \"soon\"\n", []string{"cfg.toml:6: key \"timeout\"", "invalid duration \"soon\""}},
		{"static index checked", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/s/\"\n  static = \"" + dir + "\"\n  index = [\"../x\"]\n", []string{"cfg.toml:6: index \"../x\": want a plain file name"}},
		{"bad dark port", "[telescope]\ndark_ports = [\"23/sctp\"]\n", []string{"cfg.toml:2: [telescope] dark_ports"}},
		{"site keys at their lines", "[[site]]\nroot = \"" + dir + "\"\nindex = [\"a/b\"]\ntry_files = [\"=404\", \"x\"]\nsymlinks = \"sometimes\"\n",
			[]string{"cfg.toml:3: site index \"a/b\"", "cfg.toml:4: site try_files \"=404\": \"=404\" can only be the last", "cfg.toml:4: site try_files \"x\"", "cfg.toml:5: site symlinks \"sometimes\""}},
		{"sendfile_root only on gateways", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/\"\n  proxy = \"http://127.0.0.1:1\"\n  sendfile_root = \"" + dir + "\"\n", []string{"cfg.toml:6: key \"sendfile_root\" does not apply to a proxy route", "it applies to: fastcgi, wsgi"}},
		{"unknown user on a fastcgi_command route", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"*.php\"\n  fastcgi_command = [\"php-cgi\"]\n\n  user = \"no-such-user-gantry\"\n", []string{"cfg.toml:7: user \"no-such-user-gantry\": no such user"}},
		{"max_memory too small to start an interpreter", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/cgi-bin/\"\n  cgi = \"" + dir + "\"\n  max_memory = \"1MB\"\n", []string{"cfg.toml:6: max_memory 1048576: want at least 16MB"}},
		{"max_cpu under a second", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"*.php\"\n  fastcgi_command = [\"php-cgi\"]\n  max_cpu = \"500ms\"\n", []string{"cfg.toml:6: max_cpu 500ms: want whole seconds"}},
		{"limits need fastcgi_command", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"*.php\"\n  fastcgi = \"127.0.0.1:9000\"\n  max_memory = \"512MB\"\n", []string{"cfg.toml:6: key \"max_memory\" applies only with fastcgi_command"}},
		{"user needs fastcgi_command", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"*.php\"\n  fastcgi = \"127.0.0.1:9000\"\n  user = \"nobody\"\n", []string{"cfg.toml:6: key \"user\" applies only with fastcgi_command"}},
		{"bad interpreter", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/\"\n  wsgi = \"app\"\n  mode = \"embedded\"\n  interpreter = \"shared\"\n", []string{"cfg.toml:7: interpreter \"shared\": want \"sub\" or \"main\""}},
		{"interpreter needs embedded mode", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/\"\n  wsgi = \"app\"\n  interpreter = \"main\"\n", []string{"cfg.toml:6: interpreter = \"main\" applies to mode = \"embedded\" only"}},
		// A section given a value instead of a table: toml.Decode rejects it, and
		// so must the key-by-key decoding it falls back to.
		{"section given a value", "server = 5\nadmin = \"x\"\n[[site]]\nroot = \"" + dir + "\"\n", []string{"cfg.toml:1: key \"server\"", "cfg.toml:2: key \"admin\""}},
		{"nested table given a value", "[telescope]\nban = 3\n[[site]]\nroot = \"" + dir + "\"\n", []string{"cfg.toml:2: key \"telescope.ban\""}},
		{"env keys are free-form", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/\"\n  proxy = \"http://127.0.0.1:1\"\n  env = { A = \"b\" }\n", []string{"cfg.toml:6: key \"env\" does not apply to a proxy route"}},
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o777)
	tests = append(tests, []struct {
		name string
		toml string
		want []string
	}{
		{"request_buffering only on gateways", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/\"\n  proxy = \"http://127.0.0.1:1\"\n  request_buffering = false\n", []string{"cfg.toml:6: key \"request_buffering\" does not apply to a proxy route", "it applies to: cgi, fastcgi, wsgi"}},
		{"body_temp a file", "[server]\nbody_temp = \"" + file + "\"\n", []string{"cfg.toml:2: [server] body_temp", "not a directory"}},
		{"body_temp open to others", "[server]\nbody_temp = \"" + open + "\"\n", []string{"cfg.toml:2: [server] body_temp", "writable by other users (mode 777)"}},
	}...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("cfg.toml", tc.toml)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\nlacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the password: %s", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	text := "[[site]]\nhosts = [\"Example.com\"]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/\"\n  wsgi = \"app:application\"\n  env = { DJANGO_SETTINGS_MODULE = \"x.settings\" }\n  [[site.route]]\n  path = \"*.php\"\n  fastcgi_command = [\"php-cgi\"]\n"
	c, err := config.Parse("cfg.toml", text)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Server.Listen; len(got) != 1 || got[0] != config.DefaultListen {
		t.Errorf("listen = %v", got)
	}
	if c.Server.ReadHeaderTimeout.D() != 10*time.Second || c.Server.MaxBody != 100<<20 || c.Admin.Listen != config.DefaultAdminListen {
		t.Errorf("server defaults: %+v admin %+v", c.Server, c.Admin)
	}
	w, ok := c.Sites[0].Routes[0].Handler.(*wsgi.Options)
	if !ok || w.Processes != 2 || w.Threads != 4 || w.Timeout.D() != 60*time.Second || w.Env["DJANGO_SETTINGS_MODULE"] != "x.settings" ||
		w.Mode != "daemon" || w.Interpreter != "sub" {
		t.Errorf("wsgi route defaults: %+v", c.Sites[0].Routes[0].Handler)
	}
	p, ok := c.Sites[0].Routes[1].Handler.(*fastcgi.Options)
	if !ok || p.Processes != 2 || p.Index[0] != "index.php" || p.Split[0] != ".php" {
		t.Errorf("fastcgi route defaults: %+v", c.Sites[0].Routes[1].Handler)
	}
	if c.Server.BodyTemp != "" || !w.Buffered() || !p.Buffered() {
		t.Errorf("body defaults: body_temp %q, buffered %v %v", c.Server.BodyTemp, w.Buffered(), p.Buffered())
	}
	c, err = config.Parse("cfg.toml", text+"  request_buffering = false\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Sites[0].Routes[1].Handler.(*fastcgi.Options).Buffered() {
		t.Error("request_buffering = false: route still buffered")
	}
	// A site with a *.php route is a PHP site: index.php indexes, /index.php fronts.
	site := c.Sites[0]
	if strings.Join(site.Index, ",") != "index.html,index.php" || strings.Join(site.TryFiles, ",") != "{path},{path}/,/index.php" || site.Symlinks != config.SymlinksInside {
		t.Errorf("PHP site defaults: index %v try_files %v symlinks %q", site.Index, site.TryFiles, site.Symlinks)
	}
	c, err = config.Parse("cfg.toml", "[[site]]\nroot = \""+dir+"\"\ntry_files = []\n  [[site.route]]\n  path = \"*.php\"\n  fastcgi = \"127.0.0.1:9000\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if tf := c.Sites[0].TryFiles; tf == nil || len(tf) != 0 {
		t.Errorf("try_files = [] became %#v: it must stay off", tf)
	}
	c, err = config.Parse("cfg.toml", "[[site]]\nroot = \""+dir+"\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Sites[0]; len(s.TryFiles) != 0 || strings.Join(s.Index, ",") != "index.html" {
		t.Errorf("a site without PHP: index %v try_files %v", s.Index, s.TryFiles)
	}
}

func TestExampleConfigsParse(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*/gantry.toml")
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			if _, err := config.Load(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"100MB": 100 << 20, "512kb": 512 << 10, "1G": 1 << 30, "1024": 1024, "7 B": 7} {
		if got, err := config.ParseSize(in); err != nil || got != want {
			t.Errorf("config.ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1MB", "10XB", "99999999999999999GB"} {
		if _, err := config.ParseSize(bad); err == nil {
			t.Errorf("config.ParseSize(%q) succeeded", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	// A full config, a broken table header, inline tables, and arrays of tables.
	seed, _ := os.ReadFile("testdata/full.toml")
	f.Add(string(seed))
	f.Add("[server\nlisten=1")
	f.Add("[[site]]\n[[site.route]]\npath=\"/\"\nenv={A=\"1\",B={C=2}}\n")
	f.Add("[[site.route]]\n[[site]]\nhosts=[\"*.\"]\n")
	// TLS keys: a wildcard for ACME, a pair, an alias CA.
	f.Add("[server]\ntls_listen=[\"127.0.0.1:0\"]\n[tls]\nca=\"staging\"\nhsts=\"max-age=1\"\n[[site]]\nhosts=[\"*.a\",\"127.0.0.1\"]\ntls_cert=\"c\"\n")
	// Values of the wrong type, which send Parse down its key-by-key decoding: at
	// top level, in a nested table, a table where a value belongs, in a site.
	wrong, _ := os.ReadFile("testdata/bad-types.toml")
	f.Add(string(wrong))
	f.Add("server=1\n[telescope]\nban=3\n")
	f.Add("[[site]]\nhosts={a=1}\nroute=5\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := config.Parse("fuzz.toml", text)
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
	})
}

func TestRelativePathsFollowTheFile(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "site", "public"), 0o755)
	file := filepath.Join(dir, "site", "gantry.toml")
	os.WriteFile(file, []byte("[server]\naccess_log = \"logs/access.log\"\n[[site]]\nroot = \"public\"\n"), 0o644)
	c, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "site", "public"); c.Sites[0].Root != want {
		t.Errorf("root = %q, want %q", c.Sites[0].Root, want)
	}
	if want := filepath.Join(dir, "site", "logs", "access.log"); c.Server.AccessLog != want {
		t.Errorf("access_log = %q, want %q", c.Server.AccessLog, want)
	}
}

// write_timeout defaults to nginx's send_timeout, and an explicit "0" turns it
// off rather than falling back to the default.
func TestWriteTimeout(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       time.Duration
	}{
		{"absent: 60s", "[server]\n", 60 * time.Second},
		{"explicit zero: none", "[server]\nwrite_timeout = \"0\"\n", 0},
		{"explicit 0s: none", "[server]\nwrite_timeout = \"0s\"\n", 0},
		{"explicit value", "[server]\nwrite_timeout = \"5s\"\n", 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse("cfg.toml", tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Server.WriteTimeout.D(); got != tc.want {
				t.Errorf("write_timeout = %v, want %v", got, tc.want)
			}
		})
	}
	c := &config.Config{}
	if err := c.Complete(); err != nil {
		t.Fatal(err)
	}
	if got := c.Server.WriteTimeout.D(); got != config.DefaultWriteTimeout {
		t.Errorf("a config built in code: write_timeout = %v, want %v", got, config.DefaultWriteTimeout)
	}
}

func TestBanConfig(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string // each must appear in the error text; none: valid
	}{
		{"defaults", "[telescope.ban]\nenabled = true\nfile = \"/var/lib/gantry/bans.json\"\n", nil},
		{"negative count", "[telescope.ban]\nenabled = true\n\nscanner_hits = -1\n", []string{"cfg.toml:4: [telescope.ban] scanner_hits = -1"}},
		{"negative escalation", "[telescope.ban]\nescalate_ipv6 = -2\n", []string{"cfg.toml:2: [telescope.ban] escalate_ipv6 = -2"}},
		{"import URL, its password never repeated", "[telescope.ban]\nimport = [\"https://gantry:hunter2@node2:2020/?x=1\"]\n", []string{"cfg.toml:2: [telescope.ban] import[0]: https://gantry:xxxxx@node2:2020/?x=1: want a URL"}},
		{"import not a URL", "[telescope.ban]\nimport = [\"node2:2020\"]\n", []string{"cfg.toml:2: [telescope.ban] import[0]:"}},
		{"import without its scheme, the password never repeated", "[telescope.ban]\nimport = [\"gantry:hunter2@node2:2020\"]\n", []string{"cfg.toml:2: [telescope.ban] import[0]:"}},
		{"import with an opaque URL, the password never repeated", "[telescope.ban]\nimport = [\"https:gantry:hunter2@node2\"]\n", []string{"cfg.toml:2: [telescope.ban] import[0]:"}},
		{"bad allow", "[telescope.ban]\nallow = [\"10.0.0.0/8\", \"office\"]\n", []string{"cfg.toml:2: [telescope.ban] allow \"office\""}},
		{"short duration", "[telescope.ban]\nduration = [\"10m\", \"0s\"]\n", []string{"cfg.toml:2: [telescope.ban] duration \"0s\""}},
		{"bad duration text", "[telescope.ban]\nduration = [\"ten minutes\"]\n", []string{"cfg.toml:2:", "invalid duration"}},
		{"relative file", "[telescope.ban]\nfile = \"bans.json\"\n", []string{"cfg.toml:2: [telescope.ban] file \"bans.json\": want an absolute path"}},
		{"ban needs the telescope", "[telescope]\nenabled = false\n[telescope.ban]\nenabled = true\n", []string{"cfg.toml:4: [telescope.ban] enabled needs the telescope"}},
		{"unknown key suggests", "[telescope.ban]\nscaner_hits = 3\n", []string{"cfg.toml:2: unknown key \"scaner_hits\" in [telescope.ban] (did you mean \"scanner_hits\"?)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse("cfg.toml", tc.toml)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				b := c.Telescope.Ban
				if !b.Enabled || b.Scanner() != 20 || b.Dark() != 3 || b.Logins() != 10 || b.Limited() != 100 || b.Max != 100000 ||
					fmt.Sprint(b.Durations()) != "[10m0s 1h0m0s 24h0m0s]" || b.ScannerWindow.D() != 10*time.Minute ||
					b.Escalate() != 4 || b.ImportEvery.D() != 30*time.Second {
					t.Errorf("defaults: %+v", b)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\nlacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the password: %s", err)
			}
		})
	}
}

// TestBanFileDefault: bans.json sits in the state directory by [tls] storage's rule.
func TestBanFileDefault(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("STATE_DIRECTORY", dir)
	c, err := config.Parse("cfg.toml", "[telescope.ban]\nenabled = true\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Telescope.Ban.File != filepath.Join(dir, "bans.json") || c.TLS.Storage != filepath.Join(dir, "tls") {
		t.Errorf("file %q, tls storage %q", c.Telescope.Ban.File, c.TLS.Storage)
	}
	if c.Telescope.Ban.Enabled != true {
		t.Error("not enabled")
	}
	if n := c.Telescope.Ban.Escalate(); n != 4 {
		t.Errorf("escalate_ipv6 default %d, want 4", n)
	}
	c, err = config.Parse("cfg.toml", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Telescope.Ban.Enabled {
		t.Error("bans on by default")
	}
}

// TestGeoIP: [telescope] geoip takes MaxMind DB files; a missing file or one that
// is not a database is an error naming the key, the file and the cause.
func TestGeoIP(t *testing.T) {
	dir := t.TempDir()
	country, asn := geoiptest.Write(t, dir, []geoiptest.Network{{CIDR: "198.51.100.0/24", Country: "NL", ASN: 64500, ASOrg: "x"}})
	text := filepath.Join(dir, "GeoLite2-City.mmdb")
	os.WriteFile(text, []byte("<html>404 not found</html>"), 0o644)
	c, err := config.Parse("cfg.toml", fmt.Sprintf("[telescope]\ngeoip = [%q, %q]\n", country, asn))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Telescope.GeoIP) != 2 {
		t.Fatalf("geoip = %v", c.Telescope.GeoIP)
	}
	for _, tc := range []struct{ name, file, want string }{
		{"missing", filepath.Join(dir, "nope.mmdb"), "cfg.toml:2: [telescope] geoip \"" + filepath.Join(dir, "nope.mmdb") + "\": no such file or directory"},
		{"not a database", text, "cfg.toml:2: [telescope] geoip \"" + text + "\": not a MaxMind DB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("cfg.toml", fmt.Sprintf("[telescope]\ngeoip = [%q, %q]\n", country, tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
