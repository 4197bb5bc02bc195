package server

import (
	"net/http"
	"sort"
	"strings"
)

// route is one built route of a site.
type route struct {
	path    string // the config's path pattern
	kind    string
	target  string
	handler http.Handler // what requests are served by
	app     http.Handler // the route's own handler (handler may wrap it)
	// fast and cached are app as the fast path may use it, nil when it may not.
	fast   FastServer
	cached CachedServer
	body   bodyMode
	// for suffix routes: the prefix part ("/" for "*.php") and the suffix (".php")
	dir, suffix string
}

// site is one built virtual host.
type site struct {
	name     string // first host, or "default"
	hosts    []string
	exact    map[string]*route
	suffixes []*route  // longest dir first
	prefixes []*route  // longest first
	routes   []*route  // config order, for status
	try      *tryFiles // nil unless the site has try_files
}

func newSite(name string, hosts []string, routes []*route) *site {
	s := &site{name: name, hosts: hosts, exact: map[string]*route{}, routes: routes}
	for _, r := range routes {
		switch {
		case strings.Contains(r.path, "*"):
			dir, suf, _ := strings.Cut(r.path, "*")
			if dir == "" {
				dir = "/"
			}
			r.dir, r.suffix = dir, suf
			s.suffixes = append(s.suffixes, r)
		case strings.HasSuffix(r.path, "/"):
			s.prefixes = append(s.prefixes, r)
		default:
			s.exact[r.path] = r
		}
	}
	sort.SliceStable(s.suffixes, func(i, j int) bool { return len(s.suffixes[i].dir) > len(s.suffixes[j].dir) })
	sort.SliceStable(s.prefixes, func(i, j int) bool { return len(s.prefixes[i].path) > len(s.prefixes[j].path) })
	return s
}

// match picks the route for a URL path: an exact path first, then suffix patterns
// (a path segment ending in the suffix, so "/info.php/extra" matches "*.php"), the
// longest prefix part first, then the longest prefix. A prefix route "/x/" also takes
// "/x", so that the handler can redirect to the slash the way nginx and Apache do.
func (s *site) match(path string) *route {
	if r, ok := s.exact[path]; ok {
		return r
	}
	for _, r := range s.suffixes {
		if strings.HasPrefix(path, r.dir) && segmentEndsWith(path[len(r.dir)-1:], r.suffix) {
			return r
		}
	}
	for _, r := range s.prefixes {
		if strings.HasPrefix(path, r.path) || path == r.path[:len(r.path)-1] {
			return r
		}
	}
	return nil
}

// segmentEndsWith reports whether some segment of path ends with suffix.
func segmentEndsWith(path, suffix string) bool {
	for i := 0; ; {
		j := strings.Index(path[i:], suffix)
		if j < 0 {
			return false
		}
		end := i + j + len(suffix)
		if end == len(path) || path[end] == '/' {
			// the segment must hold more than the suffix itself: "/.php" is no script
			if i+j > 0 && path[i+j-1] != '/' {
				return true
			}
		}
		i = i + j + 1
	}
}

// hostTable finds the site for a Host header.
type hostTable struct {
	exact    map[string]*site
	wildcard []wildcardSite // longest suffix first
	def      *site
}

type wildcardSite struct {
	suffix string // ".example.com"
	site   *site
}

func newHostTable(sites []*site) *hostTable {
	t := &hostTable{exact: map[string]*site{}}
	for _, s := range sites {
		if len(s.hosts) == 0 {
			t.def = s
		}
		for _, h := range s.hosts {
			h = strings.ToLower(h)
			if suf, ok := strings.CutPrefix(h, "*"); ok {
				t.wildcard = append(t.wildcard, wildcardSite{suf, s})
			} else {
				t.exact[h] = s
			}
		}
	}
	sort.SliceStable(t.wildcard, func(i, j int) bool { return len(t.wildcard[i].suffix) > len(t.wildcard[j].suffix) })
	return t
}

// lookup returns the site for host and whether it was matched by name (false when
// the default site answers).
func (t *hostTable) lookup(host string) (*site, bool) {
	h := canonicalHost(host)
	if s, ok := t.exact[h]; ok {
		return s, true
	}
	for _, w := range t.wildcard {
		if strings.HasSuffix(h, w.suffix) && len(h) > len(w.suffix) {
			return w.site, true
		}
	}
	return t.def, false
}

// canonicalHost drops the port and a trailing dot, and lowercases ASCII.
func canonicalHost(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}
