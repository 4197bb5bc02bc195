package cgi

import (
	"errors"
	"io/fs"
	"net/http"
	"strings"
)

// route is the parsed form of Options.Route.
type route struct {
	kind   routeKind
	prefix string // prefix routes: "/cgi-bin/"; suffix routes: the part before "*", at least "/"
	suffix string // suffix routes: ".cgi"
	exact  string // exact routes: "/x"
}

type routeKind int

const (
	routePrefix routeKind = iota
	routeExact
	routeSuffix
)

func parseRoute(s string) route {
	switch {
	case s == "":
		return route{kind: routePrefix, prefix: "/"}
	case strings.Contains(s, "*"):
		dir, suf, _ := strings.Cut(s, "*")
		if dir == "" {
			dir = "/"
		}
		return route{kind: routeSuffix, prefix: dir, suffix: suf}
	case strings.HasSuffix(s, "/"):
		return route{kind: routePrefix, prefix: s}
	default:
		return route{kind: routeExact, exact: s}
	}
}

// target is where a request path leads: the script, and how the URL splits around it.
type target struct {
	file       string // absolute path of the script
	scriptName string // SCRIPT_NAME
	pathInfo   string // PATH_INFO
	nph        bool
}

// resolveError carries the status a failed lookup answers with and why, for the log.
type resolveError struct {
	status int
	reason string
	err    error
}

func (e *resolveError) Error() string {
	if e.err != nil {
		return e.reason + ": " + e.err.Error()
	}
	return e.reason
}

func (e *resolveError) Unwrap() error { return e.err }

func fail(status int, reason string, err error) *resolveError {
	return &resolveError{status: status, reason: reason, err: err}
}

// checkPath refuses paths that no client following RFC 3986 sends and that exist only
// to escape a directory: NUL, and "." or ".." segments. The path has been decoded
// exactly once by net/http; it is never decoded again, so "%2e%2e" arriving here as
// "%2e%2e" (from "%252e%252e") is a harmless literal name.
func checkPath(p string) *resolveError {
	if strings.IndexByte(p, 0) >= 0 {
		return fail(http.StatusBadRequest, "NUL byte in path", nil)
	}
	if !strings.HasPrefix(p, "/") {
		return fail(http.StatusBadRequest, "path does not start with /", nil)
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return fail(http.StatusBadRequest, "dot segment in path", nil)
		}
	}
	return nil
}

// resolve maps the decoded request path to a script. In directory mode the script is
// found by walking the path's segments below the script directory through os.Root, so
// that no name, symlink or ".." can lead outside it; the first segment that names a
// regular file is the script and the rest of the path is PATH_INFO, as Apache's
// ScriptAlias does. In single-file mode every path runs the one script.
func (h *Handler) resolve(p string) (target, *resolveError) {
	if e := checkPath(p); e != nil {
		return target{}, e
	}
	rt := h.route
	if h.root == nil {
		return h.resolveFile(p)
	}
	var base, rel string // base: URL path the script directory maps to (ends in "/")
	switch rt.kind {
	case routePrefix:
		if p == strings.TrimSuffix(rt.prefix, "/") {
			return target{}, fail(http.StatusMovedPermanently, "directory without trailing slash", nil)
		}
		rest, ok := strings.CutPrefix(p, rt.prefix)
		if !ok {
			return target{}, fail(http.StatusNotFound, "path outside route "+rt.prefix, nil)
		}
		base, rel = rt.prefix, rest
	case routeSuffix:
		// An AddHandler-style route maps the whole path into the directory, like
		// a document root.
		base, rel = "/", p[1:]
	case routeExact:
		if p != rt.exact {
			return target{}, fail(http.StatusNotFound, "path outside route "+rt.exact, nil)
		}
		base, rel = "/", p[1:]
	}

	// Walk segment by segment: a directory continues the walk, a file ends it.
	var script strings.Builder
	i := 0
	for {
		for i < len(rel) && rel[i] == '/' {
			i++ // merge repeated slashes, as Apache does
		}
		if i == len(rel) {
			return h.index(base, script.String())
		}
		end := strings.IndexByte(rel[i:], '/')
		if end < 0 {
			end = len(rel)
		} else {
			end += i
		}
		seg := rel[i:end]
		if seg[0] == '.' {
			return target{}, fail(http.StatusNotFound, "hidden file", nil)
		}
		if script.Len() > 0 {
			script.WriteByte('/')
		}
		script.WriteString(seg)
		name := script.String()
		fi, err := h.root.Stat(name)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return target{}, fail(http.StatusNotFound, "no such script", err)
			}
			// os.Root refuses symlinks that lead out of the directory.
			return target{}, fail(http.StatusForbidden, "script not reachable inside "+h.opts.Path, err)
		}
		i = end
		if fi.IsDir() {
			if i == len(rel) {
				return target{}, fail(http.StatusMovedPermanently, "directory without trailing slash", nil)
			}
			continue
		}
		if rt.kind == routeSuffix && !strings.HasSuffix(seg, rt.suffix) {
			return target{}, fail(http.StatusNotFound, "no "+rt.suffix+" script on the path", nil)
		}
		if !fi.Mode().IsRegular() {
			return target{}, fail(http.StatusForbidden, "not a regular file", nil)
		}
		if fi.Mode().Perm()&0o111 == 0 {
			return target{}, fail(http.StatusForbidden, "script is not executable", nil)
		}
		return target{
			file:       h.dir + "/" + name,
			scriptName: base + name,
			pathInfo:   rel[i:],
			nph:        strings.HasPrefix(seg, "nph-"),
		}, nil
	}
}

// index runs a directory's index.cgi for a path naming the directory, the way
// Apache's DirectoryIndex does for a ScriptAlias'd directory with ExecCGI.
func (h *Handler) index(base, dir string) (target, *resolveError) {
	name := indexScript
	if dir != "" {
		name = dir + "/" + indexScript
	}
	fi, err := h.root.Stat(name)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return target{}, fail(http.StatusForbidden, "path names a directory without an executable "+indexScript, err)
	}
	return target{file: h.dir + "/" + name, scriptName: base + name}, nil
}

// indexScript is the script a request for a directory runs.
const indexScript = "index.cgi"

// resolveFile handles single-file mode: the route's path is SCRIPT_NAME, the rest of
// the request path is PATH_INFO.
func (h *Handler) resolveFile(p string) (target, *resolveError) {
	t := target{file: h.dir, nph: h.nph}
	rt := h.route
	switch rt.kind {
	case routePrefix:
		name := strings.TrimSuffix(rt.prefix, "/")
		if p != name && !strings.HasPrefix(p, rt.prefix) {
			return target{}, fail(http.StatusNotFound, "path outside route "+rt.prefix, nil)
		}
		t.scriptName, t.pathInfo = name, p[len(name):]
	case routeExact:
		if p != rt.exact {
			return target{}, fail(http.StatusNotFound, "path outside route "+rt.exact, nil)
		}
		t.scriptName = p
	case routeSuffix:
		end := suffixEnd(p, rt)
		if end < 0 {
			return target{}, fail(http.StatusNotFound, "no "+rt.suffix+" segment on the path", nil)
		}
		t.scriptName, t.pathInfo = p[:end], p[end:]
	}
	return t, nil
}

// suffixEnd returns the end of the first segment below rt.prefix that ends in rt.suffix
// and holds more than the suffix, or -1.
func suffixEnd(p string, rt route) int {
	if !strings.HasPrefix(p, rt.prefix) {
		return -1
	}
	for i := len(rt.prefix) - 1; i < len(p); {
		end := strings.IndexByte(p[i+1:], '/')
		if end < 0 {
			end = len(p)
		} else {
			end += i + 1
		}
		seg := p[i+1 : end]
		if len(seg) > len(rt.suffix) && strings.HasSuffix(seg, rt.suffix) {
			return end
		}
		i = end
	}
	return -1
}
