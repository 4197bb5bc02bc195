package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Ban is [telescope.ban]: what the telescope sees turned into bans. A banned
// source's connections are closed at accept on every listener, before TLS or any
// parsing. The ban unit is one client: an IPv4 address, an IPv6 /64 (a /48
// whose /64s keep getting banned, see EscalateIPv6). Loopback,
// private ranges, allow, every proxy route's trusted_proxies and the machine's
// own addresses are never banned.
type Ban struct {
	// Enabled turns bans on. Default false (the packaged config turns it on). An
	// exploit request (the telescope's exploit rules) always bans at once.
	Enabled bool `toml:"enabled"`
	// ScannerHits bans a source after that many scanner-category requests within
	// ScannerWindow. Default 20 in 10m; 0 never bans for scanning.
	ScannerHits   *int     `toml:"scanner_hits"`
	ScannerWindow Duration `toml:"scanner_window"`
	// DarkPorts bans after that many hits on the dark ports within Window that
	// completed a TCP handshake (a spoofed SYN never completes one; UDP, whose
	// source anyone can forge, never counts). Default 3; 0 never.
	DarkPorts *int `toml:"dark_ports"`
	// AdminLogins bans after that many failed admin logins within Window.
	// Default 10; 0 never.
	AdminLogins *int `toml:"admin_logins"`
	// RateLimited bans after that many requests answered 429 within Window.
	// Default 100; 0 never.
	RateLimited *int `toml:"rate_limited"`
	// EscalateIPv6 bans an IPv6 /48 once that many of its /64s were banned
	// within Window: a client given a /48 would otherwise rotate through its
	// 65,536 /64s, one per ban. Default 4; 0 never.
	EscalateIPv6 *int `toml:"escalate_ipv6"`
	// Window is the counting window of dark_ports, admin_logins, rate_limited
	// and escalate_ipv6. Default 10m.
	Window Duration `toml:"window"`
	// Duration is how long a ban lasts, growing for a source banned again: the
	// first ban takes the first entry, the next the second, and so on, the last
	// one repeating. Default ["10m", "1h", "24h"].
	Duration []Duration `toml:"duration"`
	// Allow lists CIDRs or addresses never banned, e.g. your office's network.
	Allow []string `toml:"allow"`
	// Max caps the bans held (default 100000): past it the oldest is dropped and
	// counted, so that a flood of sources cannot grow memory without bound.
	Max int `toml:"max"`
	// NFTables keeps the bans in the kernel too, in an nftables table of
	// gantry's own ("inet gantry"), so that a banned source's packets to
	// gantry's listening ports are dropped before they reach it; other ports
	// (SSH) stay open to it. Needs CAP_NET_ADMIN: without it gantry says so
	// once and enforces the bans itself. Default false.
	NFTables bool `toml:"nftables"`
	// Import lists other gantry nodes whose bans this one applies too: their
	// admin URLs, polled at GET /api/bans every ImportEvery (default 30s).
	// Credentials go in the URL ("https://gantry:PASSWORD@node2:2020", any
	// user name and the node's dashboard password), sent as HTTP Basic and
	// never logged. Imported bans are marked with the node they came from and
	// never passed on; what allow, loopback, private ranges and trusted
	// proxies cover is refused.
	Import      []string `toml:"import"`
	ImportEvery Duration `toml:"import_every"`
	// File keeps the bans across restarts. Default bans.json in the state
	// directory: $STATE_DIRECTORY under systemd, /var/lib/gantry for root, else
	// the user's data directory ($XDG_DATA_HOME/gantry or ~/.local/share/gantry).
	// "off" keeps bans in memory only.
	File string `toml:"file"`
}

// Limit returns a count threshold with its default; 0 means the rule never bans.
func limit(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

// Scanner, Dark, Logins and Limited are the thresholds with their defaults.
func (b Ban) Scanner() int { return limit(b.ScannerHits, 20) }
func (b Ban) Dark() int    { return limit(b.DarkPorts, 3) }
func (b Ban) Logins() int  { return limit(b.AdminLogins, 10) }
func (b Ban) Limited() int { return limit(b.RateLimited, 100) }

// Escalate is escalate_ipv6 with its default.
func (b Ban) Escalate() int { return limit(b.EscalateIPv6, 4) }

// Durations returns Duration as time.Durations.
func (b Ban) Durations() []time.Duration {
	out := make([]time.Duration, len(b.Duration))
	for i, d := range b.Duration {
		out[i] = d.D()
	}
	return out
}

// DefaultStateDir is where gantry keeps state across restarts by default, by
// the rule [tls] storage's default follows: under systemd the unit's
// StateDirectory, /var/lib/gantry for root, else the user's data directory; ""
// when there is none.
func DefaultStateDir() string {
	if d, _, _ := strings.Cut(os.Getenv("STATE_DIRECTORY"), ":"); filepath.IsAbs(d) {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/gantry"
	}
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "gantry")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "gantry")
	}
	return ""
}

func (b *Ban) setDefaults() {
	setDur(&b.ScannerWindow, 10*time.Minute)
	setDur(&b.Window, 10*time.Minute)
	setDur(&b.ImportEvery, 30*time.Second)
	if len(b.Duration) == 0 {
		b.Duration = []Duration{Duration(10 * time.Minute), Duration(time.Hour), Duration(24 * time.Hour)}
	}
	if b.Max == 0 {
		b.Max = 100000
	}
	if b.File == "" {
		if d := DefaultStateDir(); d != "" {
			b.File = filepath.Join(d, "bans.json")
		} else {
			b.File = "off"
		}
	}
}

func (c *Config) validateBan(v *validator) {
	b := &c.Telescope.Ban
	if b.Enabled && !c.Telescope.On() {
		v.addKey("telescope.ban.enabled", "[telescope.ban] enabled needs the telescope: set [telescope] enabled = true, or ban off")
	}
	for key, p := range map[string]*int{"scanner_hits": b.ScannerHits, "dark_ports": b.DarkPorts, "admin_logins": b.AdminLogins, "rate_limited": b.RateLimited, "escalate_ipv6": b.EscalateIPv6} {
		if p != nil && *p < 0 {
			v.addKey("telescope.ban."+key, "[telescope.ban] %s = %d: want a count (0 never bans for it)", key, *p)
		}
	}
	for _, d := range b.Duration {
		if d.D() < time.Second {
			v.addKey("telescope.ban.duration", "[telescope.ban] duration %q: want at least 1s, like [\"10m\", \"1h\", \"24h\"]", d.D())
		}
	}
	if b.ScannerWindow.D() < time.Second || b.Window.D() < time.Second {
		v.addKey("telescope.ban", "[telescope.ban] scanner_window and window: want at least 1s, like \"10m\"")
	}
	for _, a := range b.Allow {
		if _, err := ParseCIDROrAddr(a); err != nil {
			v.addKey("telescope.ban.allow", "[telescope.ban] allow %q: want an address or a CIDR like \"198.51.100.0/24\"", a)
		}
	}
	for i, raw := range b.Import {
		if _, err := ImportURL(raw); err != nil {
			v.addKey("telescope.ban.import", "[telescope.ban] import[%d]: %v", i, err)
		}
	}
	if b.ImportEvery.D() < time.Second {
		v.addKey("telescope.ban.import_every", "[telescope.ban] import_every: want at least 1s, like \"30s\"")
	}
	if b.Max < 1 {
		v.addKey("telescope.ban.max", "[telescope.ban] max = %d: want a positive count", b.Max)
	}
	if b.File != "off" && !filepath.IsAbs(b.File) {
		v.addKey("telescope.ban.file", "[telescope.ban] file %q: want an absolute path or \"off\"", b.File)
	}
}

// ParseCIDROrAddr reads "198.51.100.0/24" or "198.51.100.7" (a prefix of one
// address), masked, IPv4-mapped IPv6 as IPv4.
func ParseCIDROrAddr(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ImportURL reads one [telescope.ban] import URL: http or https, a host, no
// query. Its errors never repeat the password.
func ImportURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("want a URL like \"https://gantry:PASSWORD@node2:2020\"")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Opaque != "" {
		// not read as scheme://user:password@host: Redacted would show the
		// password ("gantry:PASSWORD@node2" is scheme "gantry")
		return nil, errors.New("want a URL like \"https://gantry:PASSWORD@node2:2020\"")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%s: want a URL like \"https://gantry:PASSWORD@node2:2020\", without a query", u.Redacted())
	}
	return u, nil
}
