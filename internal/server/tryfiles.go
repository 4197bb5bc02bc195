package server

import (
	"io/fs"
	"net/http"
	"path"
	"strings"

	"gantry/internal/config"
	"gantry/internal/fsroot"
	"gantry/internal/static"
)

// tryFiles is a site's try_files (nginx's directive, Caddy's php_fastcgi order)
// for the requests its root's static route would answer: the first candidate that
// exists decides, and when none does the request is handed, internally, to the
// fallback URI — /index.php for a PHP front controller. The client's REQUEST_URI
// and query string are kept; one rewrite at most, so no loop is possible.
type tryFiles struct {
	root  *fsroot.Root
	index []string         // the site's directory index, in order
	list  *static.TryFiles // nil without try_files
	route *route           // the root's static route: the only one try_files applies to
}

// newTryFiles returns the site's try_files, or nil when it needs none: without
// try_files it still runs a directory's index.php (an index name another route
// claims), as nginx's index directive does.
func newTryFiles(cs *config.Site, rootRoute *route) (*tryFiles, error) {
	if rootRoute == nil || len(cs.TryFiles) == 0 && len(staticIndex(cs)) == len(cs.Index) {
		return nil, nil
	}
	mode, err := fsroot.ParseMode(cs.Symlinks)
	if err != nil {
		return nil, err
	}
	root, err := fsroot.Open(cs.Root, mode)
	if err != nil {
		return nil, err
	}
	return &tryFiles{root: root, index: cs.Index, route: rootRoute, list: static.NewTryFiles(cs.TryFiles)}, nil
}

// fallback is the last try_files entry, "" without try_files.
func (t *tryFiles) fallback() string {
	if t.list == nil {
		return ""
	}
	return t.list.Fallback()
}

// resolve returns the path the request for p (normalised, starting with "/")
// continues as, or "" to let the root's route answer p itself; status is set
// (404) when the fallback is "=404" and nothing matched.
func (t *tryFiles) resolve(s *site, p string) (np string, status int) {
	if t.list == nil {
		if !strings.HasSuffix(p, "/") {
			return "", 0
		}
		return t.index1(s, p), 0
	}
	return t.list.Resolve(t.root, p, func(dir string) string { return t.index1(s, dir) })
}

// index1 returns the first index file of directory dir when another route runs it
// (index.php), or "" to let the static route answer the directory: with its own
// index, or 403 when it has none, as nginx.
func (t *tryFiles) index1(s *site, dir string) string {
	dir = path.Clean(dir)
	if dir != "/" {
		dir += "/"
	}
	if fi, err := t.stat(dir); err != nil || !fi.IsDir() {
		return ""
	}
	for _, idx := range t.index {
		if fi, err := t.stat(dir + idx); err == nil && fi.Mode().IsRegular() {
			if s.match(dir+idx) == t.route {
				return ""
			}
			return dir + idx
		}
	}
	return ""
}

func (t *tryFiles) stat(name string) (fs.FileInfo, error) {
	name = strings.Trim(name, "/")
	if name == "" {
		name = "."
	}
	return t.root.Stat(name)
}

// tryRewrite applies the site's try_files to a request that matched rt: it
// returns the route and request to serve instead, r itself when nothing changes,
// or a nil route with a status to answer.
func (st *state) tryRewrite(site *site, rt *route, r *http.Request) (*route, *http.Request, int) {
	t := site.try
	if t == nil || rt != t.route {
		return rt, r, 0
	}
	np, status := t.resolve(site, r.URL.Path)
	if status != 0 {
		return nil, r, status
	}
	if np == "" || np == r.URL.Path {
		return rt, r, 0
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path, u.RawPath = np, ""
	r2.URL = &u
	return site.match(np), r2, 0
}
