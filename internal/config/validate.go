package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"gantry/internal/telescope/export"
	"gantry/internal/telescope/geoip"
)

func (c *Config) validate(v *validator, locs [][]routeLoc) {
	s := &c.Server
	for _, l := range s.Listen {
		if err := checkAddr(l); err != nil {
			v.addKey("server.listen", "[server] listen %q: %v", l, err)
		}
	}
	if s.LogFormat != "combined" && s.LogFormat != "json" {
		v.addKey("server.log_format", "[server] log_format %q: want \"combined\" or \"json\"", s.LogFormat)
	}
	if s.User != "" {
		if _, err := user.Lookup(s.User); err != nil {
			v.addKey("server.user", "[server] user %q: no such user", s.User)
		}
	}
	checkBodyTemp(v, s.BodyTemp)
	if a := c.Admin.Listen; a != "off" {
		if err := checkAddr(a); err != nil {
			v.addKey("admin.listen", "[admin] listen %q: %v", a, err)
		} else if !IsLoopback(a) && c.Admin.PasswordHash == "" {
			v.addKey("admin.listen", "[admin] listen %q is not loopback: set password_hash (make one with `gantry hash-password`) or listen on 127.0.0.1", a)
		}
	}
	for _, d := range c.Telescope.Dark {
		if _, err := netip.ParsePrefix(d); err != nil {
			v.addKey("telescope.dark", "[telescope] dark %q: not a CIDR prefix like \"203.0.113.0/24\"", d)
		}
	}
	for _, d := range c.Telescope.DarkPorts {
		if _, err := ParseDarkPort(d); err != nil {
			v.addKey("telescope.dark_ports", "[telescope] dark_ports %q: %v", d, err)
		}
	}
	for _, f := range c.Telescope.GeoIP {
		if _, err := os.Stat(f); err != nil {
			v.addKey("telescope.geoip", "[telescope] geoip %q: %v", f, unwrapPathErr(err))
		} else if err := geoip.Check(f); err != nil {
			v.addKey("telescope.geoip", "[telescope] geoip %q: not a MaxMind DB of countries or AS numbers (%v); download GeoLite2-Country.mmdb and GeoLite2-ASN.mmdb from MaxMind", f, errors.Unwrap(err))
		}
	}
	checkExport(v, &c.Telescope)

	hostOwner := map[string]int{}
	defaults := 0
	for si := range c.Sites {
		site := &c.Sites[si]
		if si < len(v.sites) && v.sites[si].undecoded {
			continue // its type error is reported; its values are not there to check
		}
		line := 0
		siteKey := func(string) int { return line }
		// keys whose wrong type is reported: checks that read them would only add
		// knock-on problems (a root of the wrong type is not a missing root)
		var badKey map[string]bool
		if si < len(v.sites) {
			sl := v.sites[si]
			badKey = sl.reported
			line = sl.line
			siteKey = func(key string) int {
				if l, ok := sl.keys[key]; ok {
					return l
				}
				return sl.line
			}
		} else if si < len(locs) && len(locs[si]) > 0 {
			line = locs[si][0].line
		}
		if len(site.Hosts) == 0 && !badKey["hosts"] {
			defaults++
			if defaults == 2 {
				v.add(line, "two sites without hosts: only one site may be the default; give this one hosts = [...]")
			}
		}
		for _, h := range site.Hosts {
			h = strings.ToLower(h)
			if !validHostPattern(h) {
				v.add(siteKey("hosts"), "site host %q: want a name like \"example.com\" or \"*.example.com\"", h)
			}
			if prev, ok := hostOwner[h]; ok && prev != si {
				v.add(siteKey("hosts"), "site host %q is also claimed by an earlier site", h)
			}
			hostOwner[h] = si
		}
		site.validate(v, siteKey)
		for _, o := range site.Middleware {
			for _, p := range o.Validate(&Scope{Site: site}) {
				v.add(siteKey(p.Key), "%s", p.Msg)
			}
		}
		if site.Root != "" {
			checkDir(v, siteKey("root"), "site root", site.Root)
		} else if len(site.Routes) == 0 && !badKey["root"] && !badKey["route"] {
			v.add(line, "site %v has neither root nor routes: set root = \"/path/to/files\"", site.Hosts)
		}
		seen := map[string]bool{}
		for ri := range site.Routes {
			r := &site.Routes[ri]
			loc := &routeLoc{}
			if si < len(locs) && ri < len(locs[si]) {
				loc = &locs[si][ri]
			}
			if loc.undecoded {
				continue
			}
			if err := checkRoutePath(r.Path); err != nil {
				v.add(loc.lineOf("path"), "route path %q: %v", r.Path, err)
			}
			if seen[r.Path] {
				v.add(loc.lineOf("path"), "route path %q appears twice in this site", r.Path)
			}
			seen[r.Path] = true
			switch {
			case loc.broken:
			case r.Handler == nil:
				v.add(loc.line, "route %q has no handler: set one of %s", r.Path, selectorKeys())
			default:
				sc := loc.scope(site, r, "")
				for _, p := range r.Handler.Validate(sc) {
					v.add(loc.lineOf(p.Key), "%s", p.Msg)
				}
				for _, o := range r.Middleware {
					for _, p := range o.Validate(sc) {
						v.add(loc.lineOf(p.Key), "%s", p.Msg)
					}
				}
			}
		}
	}
	c.validateTLS(v)
	c.validateBan(v)
}

func (s *Site) validate(v *validator, lineOf func(string) int) {
	for _, idx := range s.Index {
		if idx == "" || strings.ContainsAny(idx, "/\\\x00") || idx == "." || idx == ".." {
			v.add(lineOf("index"), "site index %q: want a plain file name like \"index.html\"", idx)
		}
	}
	for i, t := range s.TryFiles {
		if msg := TryFilesProblem(t, i == len(s.TryFiles)-1); msg != "" {
			v.add(lineOf("try_files"), "site %s", msg)
		}
	}
	if len(s.TryFiles) > 0 && s.Root == "" {
		v.add(lineOf("try_files"), "site try_files needs the site's root: set root = \"/path/to/files\"")
	}
	switch s.Symlinks {
	case SymlinksInside, SymlinksOwner, SymlinksFollow:
	default:
		v.add(lineOf("symlinks"), "site symlinks %q: want \"inside\", \"owner\" or \"follow\"", s.Symlinks)
	}
}

func checkRoutePath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty: want \"/x/\" (prefix), \"/x\" (exact) or \"*.php\" (suffix)")
	case strings.HasPrefix(p, "*."):
		if strings.ContainsAny(p[2:], "*/") || len(p) == 2 {
			return fmt.Errorf("a suffix pattern looks like \"*.php\"")
		}
	case p[0] != '/':
		return fmt.Errorf("must start with \"/\" or \"*.\"")
	case strings.Contains(p, "*"):
		dir, suf, _ := strings.Cut(p, "*")
		if !strings.HasSuffix(dir, "/") || !strings.HasPrefix(suf, ".") || strings.ContainsAny(suf, "*/") {
			return fmt.Errorf("a suffix pattern under a prefix looks like \"/blog/*.php\"")
		}
	case strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") || strings.Contains(p, "//"):
		return fmt.Errorf("must be a clean path")
	}
	return nil
}

func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("want host:port, like \"127.0.0.1:8080\" or \":80\"")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err != nil {
			return fmt.Errorf("host %q is not an IP address (use \"0.0.0.0\" or \"[::]\" for all)", host)
		}
	}
	return nil
}

// IsLoopback reports whether the listen address a only accepts local connections.
func IsLoopback(a string) bool {
	host, _, err := net.SplitHostPort(a)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func checkDir(v *validator, line int, what, dir string) {
	for _, p := range CheckDir("", what, dir) {
		v.add(line, "%s", p.Msg)
	}
}

// checkBodyTemp checks the spool directory when it exists (gantry creates it
// otherwise): a directory that no other user can write to, since spooled bodies
// pass through it.
func checkBodyTemp(v *validator, dir string) {
	const key = "server.body_temp"
	if dir == "" {
		return
	}
	if !filepath.IsAbs(dir) {
		v.addKey(key, "[server] body_temp %q: want an absolute path", dir)
		return
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		v.addKey(key, "[server] body_temp %q: %v", dir, unwrapPathErr(err))
	case !fi.IsDir():
		v.addKey(key, "[server] body_temp %q: not a directory", dir)
	case fi.Mode().Perm()&0o022 != 0:
		v.addKey(key, "[server] body_temp %q: writable by other users (mode %o); chmod 700 it or name a private directory", dir, fi.Mode().Perm())
	}
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func validHostPattern(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// DarkPort is one parsed dark_ports entry.
type DarkPort struct {
	Addr     string // listen address, "host:port" (host may be empty: all addresses)
	Protocol string // "tcp" or "udp"
}

// ParseDarkPort reads "23/tcp", "631/udp" or "127.0.0.1:2323/tcp".
func ParseDarkPort(s string) (DarkPort, error) {
	addr, proto, ok := strings.Cut(s, "/")
	if !ok || (proto != "tcp" && proto != "udp") {
		return DarkPort{}, fmt.Errorf("want \"PORT/tcp\", \"PORT/udp\" or \"HOST:PORT/tcp\"")
	}
	if !strings.Contains(addr, ":") {
		addr = ":" + addr
	}
	if err := checkAddr(addr); err != nil {
		return DarkPort{}, err
	}
	return DarkPort{Addr: addr, Protocol: proto}, nil
}

// checkExport checks the ClickHouse export's keys. No message repeats the URL:
// it may hold a password.
func checkExport(v *validator, t *Telescope) {
	if t.Export == "" {
		for key, val := range map[string]string{"export_user": t.ExportUser, "export_password": t.ExportPassword} {
			if val != "" {
				v.addKey("telescope."+key, "[telescope] %s is set but export is not: set export = \"http://host:8123/?database=telescope\" or remove it", key)
			}
		}
	} else if _, err := export.ParseTarget(t.Export, t.ExportUser, t.ExportPassword); err != nil {
		v.addKey("telescope.export", "[telescope] export: %v", err)
	}
	if n := t.NodeName; len(n) > 255 || strings.ContainsFunc(n, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		v.addKey("telescope.node_name", "[telescope] node_name %q: want a name of at most 255 printable characters", n)
	}
}
