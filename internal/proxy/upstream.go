package proxy

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// upstream is a parsed Options.Upstream.
type upstream struct {
	scheme string // "http" or "https"
	host   string // host:port placed in the request URL (a placeholder for unix sockets)
	socket string // unix socket path, or ""
	// base is the escaped path of the upstream URL. hasBase distinguishes
	// "http://h:3000" (pass the request path through) from "http://h:3000/"
	// (replace the route prefix with "/"), exactly as nginx's proxy_pass does.
	base     string
	hasBase  bool
	rawQuery string
}

// parseUpstream accepts "http://host:port[/base]", "https://host[:port][/base]"
// and "unix:/path/to.sock".
func parseUpstream(s string) (upstream, error) {
	if s == "" {
		return upstream{}, fmt.Errorf("proxy: upstream is empty: want http://host:port or unix:/path.sock")
	}
	if sock, ok := strings.CutPrefix(s, "unix:"); ok {
		if !strings.HasPrefix(sock, "/") {
			return upstream{}, fmt.Errorf("proxy: upstream %q: unix socket path must be absolute", s)
		}
		if strings.ContainsAny(sock, "\x00") {
			return upstream{}, fmt.Errorf("proxy: upstream %q: socket path contains NUL", s)
		}
		// The Host in the URL only keys the connection pool; every dial goes to the socket.
		return upstream{scheme: "http", host: "localhost", socket: sock}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return upstream{}, fmt.Errorf("proxy: upstream %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return upstream{}, fmt.Errorf("proxy: upstream %q: scheme must be http, https or unix", s)
	}
	if u.Host == "" || u.Hostname() == "" {
		return upstream{}, fmt.Errorf("proxy: upstream %q: missing host", s)
	}
	if u.User != nil {
		return upstream{}, fmt.Errorf("proxy: upstream %q: user info is not supported", s)
	}
	if u.Fragment != "" {
		return upstream{}, fmt.Errorf("proxy: upstream %q: a fragment is never sent to a server", s)
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	up := upstream{scheme: u.Scheme, host: host, rawQuery: u.RawQuery}
	if p := u.EscapedPath(); p != "" {
		up.base, up.hasBase = p, true
	}
	return up, nil
}

// mapPath returns the escaped path sent upstream for a request whose escaped
// path is reqPath, matched by route.
//
// Without a base path the request path passes through untouched, like
// nginx's "proxy_pass http://host" and Caddy's reverse_proxy. With one, the
// part of the path the route matched is replaced by the base: route "/app/"
// and upstream "http://h/api/" send "/app/x" as "/api/x". Unlike nginx, a base
// without a trailing slash still gets one between it and the rest ("/apix"
// is never what anyone meant). Suffix routes ("*.php") have no prefix to
// replace, so the base is put in front of the whole path.
//
// Dot segments in the replaced part are resolved so that "/app/../../x" can
// never climb out of the base on the upstream.
func mapPath(route, base string, hasBase bool, reqPath string) string {
	if !hasBase {
		return reqPath
	}
	var rest string
	switch {
	case strings.Contains(route, "*"):
		rest = reqPath
	case strings.HasSuffix(route, "/") || route == "":
		if r, ok := strings.CutPrefix(reqPath, route); ok {
			rest = r
		}
		// "/app" reaching route "/app/" leaves nothing after the prefix.
	default:
		// An exact route matched the whole path.
	}
	rest = removeDotSegments(rest)
	if rest == "" {
		if base == "" {
			return "/"
		}
		return base
	}
	return strings.TrimSuffix(base, "/") + "/" + rest
}

// removeDotSegments drops "." and resolves ".." segments of an escaped
// relative path (percent-encoded dots included) without ever going above its
// start. The leading slash is removed; a trailing slash is kept.
func removeDotSegments(p string) string {
	p = strings.TrimLeft(p, "/")
	if p == "" {
		return ""
	}
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	trailing := false
	for i, s := range segs {
		last := i == len(segs)-1
		switch dotValue(s) {
		case ".":
			trailing = last
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			trailing = last
		default:
			out = append(out, s)
			trailing = false
		}
	}
	r := strings.Join(out, "/")
	if trailing && r != "" {
		r += "/"
	}
	return r
}

// dotValue reports "." or ".." for a segment that decodes to one of them
// ("%2e", "%2E%2e", ...), else "".
func dotValue(seg string) string {
	if len(seg) > 6 {
		return ""
	}
	d := strings.ReplaceAll(strings.ReplaceAll(seg, "%2e", "."), "%2E", ".")
	if d == "." || d == ".." {
		return d
	}
	return ""
}
