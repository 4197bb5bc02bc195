package config

import (
	"crypto/x509"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// TLS configures where certificates come from and how HTTPS is offered. It only
// matters when [server] tls_listen is set.
type TLS struct {
	// Email is the ACME account's contact: the certificate authority writes to it
	// about expiring certificates and policy changes. Optional but recommended.
	Email string `toml:"email"`
	// CA is the ACME directory URL. Default Let's Encrypt's production directory;
	// "staging" names Let's Encrypt's staging one (for trying a setup out without
	// hitting rate limits; its certificates are not trusted by browsers).
	CA string `toml:"ca"`
	// CARoot is a PEM file of roots trusted for the ACME server's own HTTPS, for a
	// private ACME CA. Default: the system's roots.
	CARoot string `toml:"ca_root"`
	// Storage is the directory for certificates, keys, the ACME account and the
	// internal CA (at <storage>/ca/root.pem). It survives restarts, so that a
	// certificate is not issued again. It must be writable by the user gantry
	// runs as ([server] user): started as root, gantry makes it for that user.
	// Default $STATE_DIRECTORY/tls under systemd, /var/lib/gantry/tls for root,
	// else $XDG_DATA_HOME/gantry/tls (~/.local/share/gantry/tls).
	Storage string `toml:"storage"`
	// Redirect answers plain-HTTP requests to a site that has a certificate with a
	// 308 to the same URL over https. Default true.
	Redirect *bool `toml:"redirect"`
	// HSTS is the Strict-Transport-Security header sent on HTTPS responses, e.g.
	// "max-age=31536000". Default "": none (once sent, browsers refuse plain HTTP
	// to the site for that long, so turn it on deliberately).
	HSTS string `toml:"hsts"`
}

// ACME directories.
const (
	LetsEncryptCA        = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStagingCA = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// Where a site's certificate comes from.
const (
	TLSACME     = "acme"
	TLSInternal = "internal"
	TLSOff      = "off"
	// TLSOwn is a site with tls_cert and tls_key (not a value of tls).
	TLSOwn = "own"
)

// Redirects reports whether plain HTTP is redirected to https (the default).
func (t TLS) Redirects() bool { return t.Redirect == nil || *t.Redirect }

// HTTP3On reports whether HTTP/3 is served (default: when tls_listen is set).
func (s Server) HTTP3On() bool {
	return len(s.TLSListen) > 0 && (s.HTTP3 == nil || *s.HTTP3)
}

// TLSFor says where the certificate for host (one of s.Hosts) comes from:
// TLSOwn, TLSACME, TLSInternal or TLSOff.
func (s *Site) TLSFor(host string) string {
	switch {
	case s.TLSCert != "":
		return TLSOwn
	case s.TLS != "":
		return s.TLS
	case LocalName(host):
		return TLSInternal
	}
	return TLSACME
}

// LocalName reports whether host can only be reached on a local network, so that
// no public CA can certify it: localhost, an IP address, or a name under .local,
// .internal, .home.arpa or .localhost.
func LocalName(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return true
	}
	if h == "localhost" {
		return true
	}
	for _, suf := range []string{".localhost", ".local", ".internal", ".home.arpa"} {
		if strings.HasSuffix(h, suf) {
			return true
		}
	}
	return false
}

// DefaultTLSStorage is [tls] storage's default: under systemd, tls in the
// unit's StateDirectory (which systemd keeps writable and owned by the unit's
// user); else by the user gantry runs as.
func DefaultTLSStorage() string {
	if d := DefaultStateDir(); d != "" {
		return filepath.Join(d, "tls")
	}
	return filepath.Join(os.TempDir(), "gantry-tls")
}

// ACMEDirectory is the ACME directory URL [tls] ca names.
func (t TLS) ACMEDirectory() string {
	switch t.CA {
	case "":
		return LetsEncryptCA
	case "staging":
		return LetsEncryptStagingCA
	}
	return t.CA
}

func (t *TLS) resolvePaths(abs func(*string)) {
	abs(&t.CARoot)
	abs(&t.Storage)
}

func (c *Config) setTLSDefaults() {
	if c.TLS.Storage == "" {
		c.TLS.Storage = DefaultTLSStorage()
	}
	if c.Server.HTTP3 == nil && len(c.Server.TLSListen) > 0 {
		on := true
		c.Server.HTTP3 = &on
	}
}

// siteLine is the line of a [[site]]'s key, or of the site itself.
func (v *validator) siteLine(si int, key string) int {
	if si >= len(v.sites) {
		return 0
	}
	if l, ok := v.sites[si].keys[key]; ok {
		return l
	}
	return v.sites[si].line
}

func (c *Config) validateTLS(v *validator) {
	s := &c.Server
	for _, l := range s.TLSListen {
		if err := checkAddr(l); err != nil {
			v.addKey("server.tls_listen", "[server] tls_listen %q: %v", l, err)
		} else if slices.Contains(s.Listen, l) && !strings.HasSuffix(l, ":0") {
			v.addKey("server.tls_listen", "[server] tls_listen %q is also in listen: one port speaks either HTTP or HTTPS; pick another port", l)
		}
	}
	if s.HTTP3 != nil && *s.HTTP3 && len(s.TLSListen) == 0 {
		v.addKey("server.http3", "[server] http3 needs tls_listen: HTTP/3 runs on the HTTPS port (add tls_listen = [\"0.0.0.0:443\"])")
	}
	t := &c.TLS
	if t.Email != "" && (!strings.Contains(t.Email, "@") || strings.ContainsAny(t.Email, " \t\r\n<>")) {
		v.addKey("tls.email", "[tls] email %q: want an address like \"you@example.com\"", t.Email)
	}
	if t.CA != "" && t.CA != "staging" {
		if u, err := url.Parse(t.CA); err != nil || u.Scheme != "https" || u.Host == "" {
			v.addKey("tls.ca", "[tls] ca %q: want an ACME directory URL like %q, or \"staging\"", t.CA, LetsEncryptCA)
		}
	}
	if t.CARoot != "" {
		if pem, err := os.ReadFile(t.CARoot); err != nil {
			v.addKey("tls.ca_root", "[tls] ca_root %q: %v", t.CARoot, unwrapPathErr(err))
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			v.addKey("tls.ca_root", "[tls] ca_root %q: no PEM certificate in it", t.CARoot)
		}
	}
	if !filepath.IsAbs(t.Storage) {
		v.addKey("tls.storage", "[tls] storage %q: want an absolute path", t.Storage)
	}
	if strings.ContainsFunc(t.HSTS, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		v.addKey("tls.hsts", "[tls] hsts %q: a header value cannot hold control characters", t.HSTS)
	} else if t.HSTS != "" && !strings.Contains(strings.ToLower(t.HSTS), "max-age=") {
		v.addKey("tls.hsts", "[tls] hsts %q: want a Strict-Transport-Security value like \"max-age=31536000\"", t.HSTS)
	}

	for si := range c.Sites {
		site := &c.Sites[si]
		switch site.TLS {
		case "", TLSACME, TLSInternal, TLSOff:
		default:
			v.add(v.siteLine(si, "tls"), "site tls %q: want \"acme\", \"internal\" or \"off\" (or tls_cert and tls_key for your own certificate)", site.TLS)
		}
		if (site.TLSCert == "") != (site.TLSKey == "") {
			v.add(v.siteLine(si, "tls_cert"), "site tls_cert and tls_key go together: set both (certificate chain and private key, PEM) or neither")
		}
		if site.TLSCert != "" && site.TLS != "" {
			v.add(v.siteLine(si, "tls"), "site tls = %q and tls_cert: your own certificate replaces tls; drop one", site.TLS)
		}
		for _, f := range []struct{ key, path string }{{"tls_cert", site.TLSCert}, {"tls_key", site.TLSKey}} {
			if f.path == "" {
				continue
			}
			if _, err := os.Stat(f.path); err != nil {
				v.add(v.siteLine(si, f.key), "site %s %q: %v", f.key, f.path, unwrapPathErr(err))
			}
		}
		if len(s.TLSListen) == 0 {
			continue
		}
		for _, h := range site.Hosts {
			if strings.HasPrefix(h, "*.") && site.TLSFor(h) == TLSACME {
				v.add(v.siteLine(si, "hosts"), "site host %q: a wildcard certificate needs the ACME DNS-01 challenge, which gantry does not do: set tls_cert and tls_key, tls = \"internal\", or tls = \"off\"", h)
			}
		}
	}
}
