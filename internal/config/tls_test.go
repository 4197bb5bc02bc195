package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTLSErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	site := "[[site]]\nroot = \"" + dir + "\"\n"
	tests := []struct {
		name string
		toml string
		want []string
	}{
		{"wildcard needs DNS-01", "[server]\ntls_listen = [\"127.0.0.1:0\"]\n" + site + "hosts = [\"*.example.com\"]\n",
			[]string{"cfg.toml:5: site host \"*.example.com\": a wildcard certificate needs the ACME DNS-01 challenge"}},
		{"wildcard with explicit acme", "[server]\ntls_listen = [\"127.0.0.1:0\"]\n" + site + "hosts = [\"*.example.com\"]\ntls = \"acme\"\n",
			[]string{"DNS-01"}},
		{"bad tls value", site + "hosts = [\"a.example\"]\ntls = \"yes\"\n", []string{"cfg.toml:4: site tls \"yes\": want \"acme\", \"internal\" or \"off\""}},
		{"cert without key", site + "tls_cert = \"" + notPEM + "\"\n", []string{"cfg.toml:3: site tls_cert and tls_key go together"}},
		{"cert and tls", site + "tls = \"internal\"\ntls_cert = \"" + notPEM + "\"\ntls_key = \"" + notPEM + "\"\n", []string{"cfg.toml:3: site tls = \"internal\" and tls_cert"}},
		{"missing key file", site + "tls_cert = \"" + notPEM + "\"\ntls_key = \"/nonexistent/k.pem\"\n", []string{"cfg.toml:4: site tls_key \"/nonexistent/k.pem\": no such file"}},
		{"tls_listen bad", "[server]\ntls_listen = [\"443\"]\n", []string{"cfg.toml:2: [server] tls_listen \"443\": want host:port"}},
		{"tls_listen same as listen", "[server]\nlisten = [\"127.0.0.1:8443\"]\ntls_listen = [\"127.0.0.1:8443\"]\n", []string{"cfg.toml:3: [server] tls_listen \"127.0.0.1:8443\" is also in listen"}},
		{"http3 without tls", "[server]\nhttp3 = true\n", []string{"cfg.toml:2: [server] http3 needs tls_listen"}},
		{"ca not a URL", "[tls]\nca = \"letsencrypt\"\n", []string{"cfg.toml:2: [tls] ca \"letsencrypt\": want an ACME directory URL"}},
		{"ca_root no PEM", "[tls]\nca_root = \"" + notPEM + "\"\n", []string{"cfg.toml:2: [tls] ca_root", "no PEM certificate"}},
		{"bad email", "[tls]\nemail = \"me at example\"\n", []string{"cfg.toml:2: [tls] email"}},
		{"hsts header injection", "[tls]\nhsts = \"max-age=1\\r\\nSet-Cookie: a=b\"\n", []string{"cfg.toml:2: [tls] hsts", "control characters"}},
		{"hsts typo", "[tls]\nhsts = \"maxage=1\"\n", []string{"cfg.toml:2: [tls] hsts \"maxage=1\""}},
		{"unknown tls key", "[tls]\nemial = \"a@b.c\"\n", []string{"cfg.toml:2: unknown key \"emial\" in [tls] (did you mean \"email\"?)"}},
		{"misplaced tls key", "[server]\nhsts = \"max-age=1\"\n", []string{"(it belongs in [tls])"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("cfg.toml", tc.toml)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestTLSDefaults(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", "/xdg")
	t.Setenv("STATE_DIRECTORY", "")
	c, err := Parse(filepath.Join(dir, "cfg.toml"), "[server]\ntls_listen = [\"127.0.0.1:0\"]\n[tls]\nca = \"staging\"\n[[site]]\nroot = \""+dir+"\"\nhosts = [\"example.com\", \"localhost\", \"127.0.0.1\", \"[::1]\", \"nas.home.arpa\", \"printer.local\", \"db.internal\"]\n"+
		"[[site]]\nroot = \""+dir+"\"\nhosts = [\"off.example\"]\ntls = \"off\"\n[[site]]\nroot = \""+dir+"\"\nhosts = [\"*.own.example\"]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n")
	if err == nil {
		t.Fatal("missing tls_cert files accepted")
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, "c.pem")) {
		t.Errorf("tls_cert not resolved against the config's directory: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "c.pem"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, "k.pem"), nil, 0o600)
	c, err = Parse(filepath.Join(dir, "cfg.toml"), "[server]\ntls_listen = [\"127.0.0.1:0\"]\n[tls]\nca = \"staging\"\n[[site]]\nroot = \""+dir+"\"\nhosts = [\"example.com\", \"localhost\", \"127.0.0.1\", \"[::1]\", \"nas.home.arpa\", \"printer.local\", \"db.internal\"]\n"+
		"[[site]]\nroot = \""+dir+"\"\nhosts = [\"off.example\"]\ntls = \"off\"\n[[site]]\nroot = \""+dir+"\"\nhosts = [\"*.own.example\"]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Server.HTTP3On() || !c.TLS.Redirects() || c.TLS.HSTS != "" {
		t.Errorf("http3 %v, redirect %v, hsts %q; want on, on, none", c.Server.HTTP3On(), c.TLS.Redirects(), c.TLS.HSTS)
	}
	if c.TLS.ACMEDirectory() != LetsEncryptStagingCA {
		t.Errorf("ca staging = %q", c.TLS.ACMEDirectory())
	}
	if os.Geteuid() == 0 && c.TLS.Storage != "/var/lib/gantry/tls" || os.Geteuid() != 0 && c.TLS.Storage != "/xdg/gantry/tls" {
		t.Errorf("storage = %q", c.TLS.Storage)
	}
	want := map[string]string{"example.com": TLSACME, "localhost": TLSInternal, "127.0.0.1": TLSInternal, "[::1]": TLSInternal,
		"nas.home.arpa": TLSInternal, "printer.local": TLSInternal, "db.internal": TLSInternal}
	for h, mode := range want {
		if got := c.Sites[0].TLSFor(h); got != mode {
			t.Errorf("TLSFor(%q) = %q, want %q", h, got, mode)
		}
	}
	if got := c.Sites[1].TLSFor("off.example"); got != TLSOff {
		t.Errorf("tls = \"off\" gives %q", got)
	}
	if got := c.Sites[2].TLSFor("*.own.example"); got != TLSOwn {
		t.Errorf("tls_cert gives %q", got)
	}

	// Without tls_listen nothing about TLS is required, not even of wildcards.
	c, err = Parse("cfg.toml", "[[site]]\nroot = \""+dir+"\"\nhosts = [\"*.example.com\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.HTTP3On() {
		t.Error("http3 on without tls_listen")
	}
}

func TestDefaultTLSStorage(t *testing.T) {
	byUser := "/xdg/gantry/tls"
	if os.Geteuid() == 0 {
		byUser = "/var/lib/gantry/tls"
	}
	for _, tc := range []struct {
		name, stateDir, want string
	}{
		// systemd's StateDirectory=gantry: the unit's user owns it.
		{"under systemd", "/var/lib/gantry", "/var/lib/gantry/tls"},
		// StateDirectory=gantry other: the first one.
		{"several state directories", "/var/lib/gantry:/var/lib/other", "/var/lib/gantry/tls"},
		{"not under systemd", "", byUser},
		// Not systemd's: ignored rather than relative to the working directory.
		{"relative state directory", "state", byUser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("XDG_DATA_HOME", "/xdg")
			t.Setenv("STATE_DIRECTORY", tc.stateDir)
			if got := DefaultTLSStorage(); got != tc.want {
				t.Errorf("DefaultTLSStorage() = %q, want %q", got, tc.want)
			}
		})
	}
}
