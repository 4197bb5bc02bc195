package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
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

	hostOwner := map[string]int{}
	defaults := 0
	for si := range c.Sites {
		site := &c.Sites[si]
		line := 0
		siteKey := func(string) int { return line }
		if si < len(v.sites) {
			sl := v.sites[si]
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
		if len(site.Hosts) == 0 {
			defaults++
			if defaults == 2 {
				v.add(line, "two sites without hosts: only one site may be the default; give this one hosts = [...]")
			}
		}
		for _, h := range site.Hosts {
			h = strings.ToLower(h)
			if !validHostPattern(h) {
				v.add(line, "site host %q: want a name like \"example.com\" or \"*.example.com\"", h)
			}
			if prev, ok := hostOwner[h]; ok && prev != si {
				v.add(line, "site host %q is also claimed by an earlier site", h)
			}
			hostOwner[h] = si
		}
		site.validate(v, siteKey)
		if site.Root != "" {
			checkDir(v, line, "site root", site.Root)
		} else if len(site.Routes) == 0 {
			v.add(line, "site %v has neither root nor routes: set root = \"/path/to/files\"", site.Hosts)
		}
		seen := map[string]bool{}
		for ri := range site.Routes {
			r := &site.Routes[ri]
			var loc routeLoc
			if si < len(locs) && ri < len(locs[si]) {
				loc = locs[si][ri]
			}
			lineOf := func(key string) int {
				if l, ok := loc.keys[key]; ok {
					return l
				}
				return loc.line
			}
			if err := checkRoutePath(r.Path); err != nil {
				v.add(lineOf("path"), "route path %q: %v", r.Path, err)
			}
			if seen[r.Path] {
				v.add(lineOf("path"), "route path %q appears twice in this site", r.Path)
			}
			seen[r.Path] = true
			kinds := r.kinds()
			switch len(kinds) {
			case 0:
				v.add(loc.line, "route %q has no handler: set one of static, cgi, fastcgi, fastcgi_command, wsgi, proxy, redirect", r.Path)
				continue
			case 1:
			default:
				v.add(loc.line, "route %q sets several handlers (%s): keep exactly one", r.Path, strings.Join(kinds, ", "))
				continue
			}
			if r.FastCGI != "" && len(r.FastCGICmd) > 0 {
				v.add(lineOf("fastcgi_command"), "route %q sets both fastcgi and fastcgi_command: connect to a running server or spawn one, not both", r.Path)
			}
			r.validate(v, site, lineOf)
		}
	}
	c.validateTLS(v)
}

func (s *Site) validate(v *validator, lineOf func(string) int) {
	for _, idx := range s.Index {
		if idx == "" || strings.ContainsAny(idx, "/\\\x00") || idx == "." || idx == ".." {
			v.add(lineOf("index"), "site index %q: want a plain file name like \"index.html\"", idx)
		}
	}
	for i, t := range s.TryFiles {
		last := i == len(s.TryFiles)-1
		switch {
		case t == "=404" && last:
		case t == "=404":
			v.add(lineOf("try_files"), "site try_files %q: \"=404\" can only be the last entry", t)
		case !strings.HasPrefix(t, "/") && !strings.HasPrefix(t, "{path}"):
			v.add(lineOf("try_files"), "site try_files %q: want \"{path}\", \"{path}/\", a path like \"/index.php\" or \"=404\"", t)
		case strings.ContainsAny(t, "?#\\\x00") || strings.Contains(t, "/.."):
			v.add(lineOf("try_files"), "site try_files %q: a clean path without query (the request's query string is kept)", t)
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

func (r *Route) validate(v *validator, site *Site, lineOf func(string) int) {
	switch r.Kind() {
	case KindStatic:
		checkDir(v, lineOf("static"), "static", r.Static)
	case KindCGI:
		if _, err := os.Stat(r.CGI); err != nil {
			v.add(lineOf("cgi"), "cgi %q: %v", r.CGI, unwrapPathErr(err))
		}
		if r.MaxProcesses < 0 {
			v.add(lineOf("max_processes"), "max_processes must be positive")
		}
	case KindFastCGI:
		if r.FastCGI != "" {
			if err := checkFastCGIAddr(r.FastCGI); err != nil {
				v.add(lineOf("fastcgi"), "fastcgi %q: %v", r.FastCGI, err)
			}
		}
		if len(r.FastCGICmd) > 0 && r.FastCGICmd[0] == "" {
			v.add(lineOf("fastcgi_command"), "fastcgi_command: the program name is empty")
		}
		if r.Root != "" {
			checkDir(v, lineOf("root"), "root", r.Root)
		} else if site.Root == "" {
			v.add(lineOf("fastcgi"), "route %q: a fastcgi route needs a document root: set root on the route or the site", r.Path)
		}
		for _, s := range r.Split {
			if !strings.HasPrefix(s, ".") {
				v.add(lineOf("split"), "split %q: want an extension like \".php\"", s)
			}
		}
	case KindWSGI:
		if r.Mode != "daemon" && r.Mode != "embedded" {
			v.add(lineOf("mode"), "mode %q: want \"daemon\" or \"embedded\"", r.Mode)
		}
		if r.Reload != "" && r.Reload != "auto" && r.Reload != "off" {
			v.add(lineOf("reload"), "reload %q: want \"auto\" or \"off\"", r.Reload)
		}
		if r.Chdir != "" {
			checkDir(v, lineOf("chdir"), "chdir", r.Chdir)
		}
		if r.Processes < 1 || r.Threads < 1 {
			v.add(lineOf("processes"), "processes and threads must be at least 1")
		}
	case KindProxy:
		if err := checkProxyURL(r.Proxy); err != nil {
			v.add(lineOf("proxy"), "proxy %q: %v", r.Proxy, err)
		}
	case KindRedirect:
		switch r.Status {
		case 301, 302, 303, 307, 308:
		default:
			v.add(lineOf("status"), "redirect status %d: want 301, 302, 303, 307 or 308", r.Status)
		}
	}
	if r.SendfileRoot != "" {
		checkDir(v, lineOf("sendfile_root"), "sendfile_root", r.SendfileRoot)
	}
	if r.MaxRequests < 0 || r.Processes < 0 || r.Threads < 0 {
		v.add(lineOf("path"), "route %q: counts must not be negative", r.Path)
	}
	if r.User != "" {
		if _, err := user.Lookup(r.User); err != nil {
			v.add(lineOf("user"), "user %q: no such user", r.User)
		}
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

func checkFastCGIAddr(a string) error {
	if p, ok := strings.CutPrefix(a, "unix:"); ok {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("a unix socket path must be absolute, like \"unix:/run/php/php8.2-fpm.sock\"")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		return fmt.Errorf("want \"unix:/path.sock\" or \"host:port\"")
	}
	return nil
}

func checkProxyURL(s string) error {
	if p, ok := strings.CutPrefix(s, "unix:"); ok {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("a unix socket path must be absolute")
		}
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want \"http://host:port\", \"https://host\" or \"unix:/path.sock\"")
	}
	return nil
}

func checkDir(v *validator, line int, what, dir string) {
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		v.add(line, "%s %q: %v", what, dir, unwrapPathErr(err))
	case !fi.IsDir():
		v.add(line, "%s %q: not a directory", what, dir)
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
