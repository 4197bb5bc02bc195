// Package static serves files from a directory, the way nginx's root/alias does,
// as an http.Handler.
//
// Safety: every file is opened through an fsroot.Root, so neither ".." nor (by
// default) a symlink can reach outside the directory; request paths with "." or ".." segments, NUL or
// backslashes are refused (400) before any file system call; segments that start
// with "." (.git, .env, .htpasswd) are 404 unless allowed, except .well-known.
// Paths are decoded once, by net/http: %2e%2e is "..", %2f a plain separator (as in
// nginx), %252e a literal "%2e".
//
// Speed: files up to CacheMaxFileSize are kept in memory with their response
// headers prebuilt, so a hit costs a map lookup and one write; larger files keep
// open descriptors in the cache instead (pool.go), so a hit costs an lseek and a
// sendfile(2) rather than open/fstat/close. The cache notices
// changes by re-checking an entry (open+fstat of the file, stat of its
// precompressed siblings) at most once per Revalidate interval (default 1s), on the
// first request after the interval; until then a changed file may be served stale
// for up to that long. Polling was chosen over inotify because it needs no
// goroutine or watch descriptors (inotify's per-user watch limit is easily reached
// by large trees), works on every file system (NFS, overlayfs, bind mounts where
// inotify misses changes) and sees atomic renames and symlink swaps the same way.
// The same check notices when Root itself now names another directory (a deploy
// that swaps a "current" symlink) and reopens it.
//
// File bodies go out with io.Copy from the *os.File, which lets net/http use
// sendfile(2); a ResponseWriter wrapper must implement io.ReaderFrom to keep it.
package static

import (
	"gantry/internal/config"
	"gantry/internal/fsroot"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Options configures a Handler. Its keys are a static route's (static, index,
// allow_dotfiles, browse, try_files); the fields without one are set by code. Zero values mean the
// defaults given per field.
type Options struct {
	// Root is the directory served.
	Root string `toml:"static"`
	// Route is the route path the handler is mounted on. For a prefix route
	// ("/static/") that prefix is stripped before mapping to Root, like nginx's
	// alias: /static/a.css → Root/a.css. For any other route ("/x", "*.css") the
	// whole request path is mapped. Empty means "/".
	Route string `toml:"-"`
	// Index names the files tried, in order, for a request ending in "/".
	// Default ["index.html"].
	Index []string `toml:"index"`
	// AllowDotfiles serves path segments that start with "."; by default they
	// are 404 (except .well-known).
	AllowDotfiles bool `toml:"allow_dotfiles"`
	// Browse lists a directory that has no index file: an HTML page sortable by
	// name, size and date, or JSON (name, size, mtime, is_dir) for a request that
	// accepts application/json. Only what a request could fetch is listed: no
	// dotfiles (unless allow_dotfiles), no link the site's symlinks policy would
	// not follow. Default false: such a directory is 403, as in nginx.
	Browse bool `toml:"browse"`
	// TryFiles, as nginx's try_files, lists what is tried in order for a request:
	// "{path}" is its path under the route as a file, "{path}/" as a directory;
	// the last entry is the path under the route the request continues as when
	// nothing matched, or "=404". ["{path}", "{path}/", "/index.html"] serves a
	// single-page app. Default none.
	TryFiles []string `toml:"try_files"`
	// Also lists further directories, searched in order for a file Root does not
	// have (a miss in one goes on to the next; the first hit answers): one tree
	// made of several, as Django's static file finders make one.
	Also []string `toml:"-"`
	// BrowseLimit is the most directory entries a listing reads; a page says when
	// there were more. Default 10000.
	BrowseLimit int `toml:"-"`
	// CacheMaxBytes bounds the memory used for cached file contents. Default
	// 32 MB; negative disables the cache.
	CacheMaxBytes int64 `toml:"-"`
	// CacheMaxFileSize is the largest file kept in memory; larger files are
	// sent with sendfile from descriptors the cache keeps open. Default 64 KB
	// (above that, sendfile's saved copy outweighs its extra system calls).
	CacheMaxFileSize int64 `toml:"-"`
	// MaxOpenFiles bounds the descriptors the cache keeps open for large
	// files. Default 256.
	MaxOpenFiles int `toml:"-"`
	// Revalidate is how long a cached file is trusted before it is checked for
	// changes again. Default 1s.
	Revalidate time.Duration `toml:"-"`
	// MaxRanges is the most byte ranges one request may ask for; a Range header
	// with more is ignored and the whole file sent with 200 (as Apache's
	// MaxRanges does). Default 100.
	MaxRanges int `toml:"-"`
	// Symlinks is the symbolic link policy (default fsroot.Inside: no link may
	// lead out of Root).
	Symlinks fsroot.Mode `toml:"-"`
	// CacheControl, when set, is sent as the Cache-Control header of every
	// file response (e.g. "public, max-age=3600").
	CacheControl string `toml:"-"`
}

const (
	defaultCacheMaxBytes    = 32 << 20
	defaultCacheMaxFileSize = 64 << 10
	defaultMaxOpenFiles     = 256
	defaultRevalidate       = time.Second
	defaultMaxRanges        = 100
	defaultBrowseLimit      = 10000
)

// Handler serves the files under Options.Root.
type Handler struct {
	opts   Options
	log    *slog.Logger
	prefix int // bytes of the request path to strip: len(Route)-1 for a prefix route
	// stripPrefix is Route without its trailing slash, checked when prefix > 0.
	stripPrefix  string
	revalidateNS int64
	cacheControl []string // nil when Options.CacheControl is empty
	state        atomic.Pointer[rootState]
	fds          fdBudget // descriptors held by the cache's pools
	shut         atomic.Bool
	try          *TryFiles // nil without try_files
	// pathFirst is set when try_files starts with "{path}": then a cached file
	// is the first candidate that exists, and is served without a lookup.
	pathFirst bool
	next      *Handler // the handler for the next directory of Options.Also
}

// rootState is an opened Root and the cache of files read through it: when Root
// is found to name another directory both are replaced together.
type rootState struct {
	root    *fsroot.Root
	dev     uint64
	ino     uint64
	checked atomic.Int64 // UnixNano of the last check that Root still names this directory
	cache   *cache
}

// New opens opts.Root and returns a Handler serving it.
func New(opts Options, logger *slog.Logger) (*Handler, error) {
	if opts.Root == "" {
		return nil, errors.New("static: root directory not set")
	}
	if opts.Route == "" {
		opts.Route = "/"
	}
	opts.defaults()
	if bad := badIndex(opts.Index); bad != "" {
		return nil, fmt.Errorf("static: index name %q: must be a plain file name", bad)
	}
	if opts.CacheMaxBytes == 0 {
		opts.CacheMaxBytes = defaultCacheMaxBytes
	}
	if opts.CacheMaxFileSize <= 0 {
		opts.CacheMaxFileSize = defaultCacheMaxFileSize
	}
	if opts.MaxOpenFiles <= 0 {
		opts.MaxOpenFiles = defaultMaxOpenFiles
	}
	if opts.Revalidate <= 0 {
		opts.Revalidate = defaultRevalidate
	}
	if opts.MaxRanges <= 0 {
		opts.MaxRanges = defaultMaxRanges
	}
	if opts.BrowseLimit <= 0 {
		opts.BrowseLimit = defaultBrowseLimit
	}
	for i, e := range opts.TryFiles {
		if msg := config.TryFilesProblem(e, i == len(opts.TryFiles)-1); msg != "" {
			return nil, fmt.Errorf("static: %s", msg)
		}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{opts: opts, log: logger, revalidateNS: int64(opts.Revalidate)}
	h.fds.max = int64(opts.MaxOpenFiles)
	if opts.CacheControl != "" {
		h.cacheControl = []string{opts.CacheControl}
	}
	if strings.HasSuffix(opts.Route, "/") && strings.HasPrefix(opts.Route, "/") {
		h.prefix = len(opts.Route) - 1
		h.stripPrefix = opts.Route[:h.prefix]
	}
	st, err := h.openRoot(time.Now().UnixNano())
	if err != nil {
		return nil, err
	}
	h.state.Store(st)
	if h.try = NewTryFiles(opts.TryFiles); h.try != nil {
		h.pathFirst = opts.TryFiles[0] == "{path}"
	}
	if len(opts.Also) > 0 {
		next := opts
		next.Root, next.Also, next.TryFiles, next.Browse = opts.Also[0], opts.Also[1:], nil, false
		if h.next, err = New(next, logger); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func (h *Handler) openRoot(now int64) (*rootState, error) {
	root, err := fsroot.Open(h.opts.Root, h.opts.Symlinks)
	if err != nil {
		return nil, fmt.Errorf("static: open root %s: %w", h.opts.Root, err)
	}
	fi, err := root.Stat(".")
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("static: stat root %s: %w", h.opts.Root, err)
	}
	if !fi.IsDir() {
		root.Close()
		return nil, fmt.Errorf("static: root %s: not a directory", h.opts.Root)
	}
	st := &rootState{root: root, cache: newCache(h.opts.CacheMaxBytes)}
	st.dev, st.ino = devIno(fi)
	st.checked.Store(now)
	return st, nil
}

// current returns the root state, first checking (at most once per Revalidate
// interval, by one request) whether opts.Root now names another directory. The
// replaced os.Root is closed by its finalizer once in-flight requests drop it.
func (h *Handler) current(now int64) *rootState {
	st := h.state.Load()
	last := st.checked.Load()
	if now-last < h.revalidateNS || !st.checked.CompareAndSwap(last, now) {
		return st
	}
	fi, err := os.Stat(h.opts.Root)
	if err != nil {
		// Keep serving what is open: a root that vanished mid-deploy usually
		// comes back, and the open directory is still consistent.
		h.log.Warn("static: root no longer reachable, serving the directory opened before", "root", h.opts.Root, "err", err)
		return st
	}
	if dev, ino := devIno(fi); dev == st.dev && ino == st.ino {
		return st
	}
	nst, err := h.openRoot(now)
	if err != nil {
		h.log.Warn("static: root changed but cannot be reopened", "root", h.opts.Root, "err", err)
		return st
	}
	h.log.Info("static: root now names another directory, reopened", "root", h.opts.Root)
	h.state.Store(nst)
	st.cache.retireAll()
	return nst
}

func devIno(fi os.FileInfo) (dev, ino uint64) {
	if s, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Dev), s.Ino
	}
	return 0, 0
}

// Shutdown closes the descriptors the cache keeps open for large files. The
// handler keeps no goroutines, so nothing else needs stopping; requests that still
// arrive are answered (large files then from disk, opened per request), so it is
// safe to call while the last in-flight requests of a replaced configuration
// finish. The root directory's descriptor is closed when the Handler is collected.
func (h *Handler) Shutdown(ctx context.Context) error {
	for ; h != nil; h = h.next {
		h.shut.Store(true)
		h.state.Load().cache.retireAll()
	}
	return nil
}

var allowHeader = []string{"GET, HEAD"}

// ServeHTTP answers GET and HEAD with the file the request path names.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header()["Allow"] = allowHeader
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rel, ok := h.relPath(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	now := time.Now().UnixNano()
	if h.try != nil && rel != "" {
		st := h.current(now)
		if !h.pathFirst || strings.HasSuffix(rel, "/") || st.cache.get(rel) == nil {
			if h.refused(w, r, rel) {
				return
			}
			np, status := h.try.Resolve(st.root, rel, func(string) string { return "" })
			if status != 0 {
				h.log.Debug("static: nothing try_files names exists", "path", r.URL.Path, "status", status)
				http.Error(w, http.StatusText(status), status)
				return
			}
			if np != "" {
				rel = np
			}
		}
	}
	h.serve(w, r, rel, now)
}

// serve answers r with what rel, the path under Root, names.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rel string, now int64) {
	st := h.current(now)
	// A key is only ever stored after validPath accepted it, and validation
	// depends on nothing but the key, so a hit needs no second check.
	if e := st.cache.get(rel); e != nil {
		if last := e.checked.Load(); now-last >= h.revalidateNS && e.checked.CompareAndSwap(last, now) {
			e = h.revalidate(st, e, rel)
		}
		if e != nil {
			h.serveEntry(w, r, st, e, rel)
			return
		}
	}
	if h.refused(w, r, rel) {
		return
	}
	h.serveMiss(w, r, st, rel)
}

// refused answers a request path that validPath refuses, and says so.
func (h *Handler) refused(w http.ResponseWriter, r *http.Request, rel string) bool {
	status, why := h.validPath(rel)
	if status == 0 {
		return false
	}
	level := slog.LevelDebug // dotfile probes are constant scanner noise
	if status == http.StatusBadRequest {
		level = slog.LevelInfo
	}
	h.log.Log(r.Context(), level, "static: request path refused", "path", r.URL.Path, "status", status, "why", why)
	http.Error(w, http.StatusText(status), status)
	return true
}

// ServeCached answers r as ServeHTTP would, but only when it can do so from the
// cache with a whole-file 200 or a 304: a GET or HEAD for a cached file, without
// Range, If-Range, If-Match or If-Unmodified-Since. Otherwise it writes nothing and
// returns false, and r should go to ServeHTTP. It is the HTTP/1.1 fast path's entry:
// w's header map is written only once the answer is certain.
func (h *Handler) ServeCached(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, k := range fullPathHeaders {
		if _, ok := r.Header[k]; ok {
			return false
		}
	}
	rel, ok := h.relPath(r.URL.Path)
	if !ok || h.try != nil && (!h.pathFirst || strings.HasSuffix(rel, "/")) {
		return false
	}
	now := time.Now().UnixNano()
	st := h.current(now)
	e := st.cache.get(rel)
	if e == nil {
		return false
	}
	if last := e.checked.Load(); now-last >= h.revalidateNS && e.checked.CompareAndSwap(last, now) {
		if e = h.revalidate(st, e, rel); e == nil {
			return false
		}
	}
	p, vary := chooseRep(e, r)
	if p.pool != nil && r.Method == http.MethodGet && memoryOnly(w) {
		return false
	}
	if p.pool == nil || r.Method != http.MethodGet {
		h.serveRep(w, r, p, vary, nil)
		return true
	}
	f, owned, err := p.pool.acquire()
	if err != nil {
		// ServeHTTP answers it from disk and the entry is revalidated.
		e.checked.Store(0)
		return false
	}
	h.serveRep(w, r, p, vary, f)
	p.pool.release(f, owned)
	return true
}

// memoryOnly reports whether w, or a writer it wraps, must not wait on the
// disk: an HTTP/2 connection's reader goroutine answering inline (internal/h2)
// holds up every stream of its connection meanwhile.
func memoryOnly(w http.ResponseWriter) bool {
	for {
		if m, ok := w.(interface{ MemoryOnly() bool }); ok {
			return m.MemoryOnly()
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}

// FastPath marks the handler as one the server's HTTP/1.1 fast path may run: it
// never hijacks the connection, and its sendfile goes through io.ReaderFrom.
func (h *Handler) FastPath() {}

// fullPathHeaders are the request headers ServeCached leaves to ServeHTTP.
var fullPathHeaders = [...]string{"Range", "If-Range", "If-Match", "If-Unmodified-Since"}

// relPath returns the part of the request path that maps into Root, starting with
// "/". For a prefix route the prefix is stripped; the prefix without its slash
// ("/static") maps to "" so it is redirected to the directory.
func (h *Handler) relPath(p string) (string, bool) {
	if h.prefix == 0 {
		return p, strings.HasPrefix(p, "/")
	}
	if !strings.HasPrefix(p, h.stripPrefix) {
		return "", false
	}
	rel := p[h.prefix:]
	if rel != "" && rel[0] != '/' {
		return "", false // "/staticfoo" under "/static/"
	}
	return rel, true
}

// validPath checks a request path (as decoded by net/http, so %2f is already "/"
// and %2e%2e already ".."; decoding once means %252e stays a literal "%2e") before it
// reaches the file system. Empty segments are merged later, as nginx does. It returns 0, or the
// status to answer with and why.
func (h *Handler) validPath(rel string) (int, string) {
	if rel == "" {
		return 0, ""
	}
	if strings.IndexByte(rel, 0) >= 0 {
		return http.StatusBadRequest, "NUL byte in path"
	}
	if strings.IndexByte(rel, '\\') >= 0 {
		// Not a separator on Unix, but a file named "..\x" is never what a
		// client means, and refusing it keeps Windows-style traversal probes
		// from ever reaching a file system call.
		return http.StatusBadRequest, "backslash in path"
	}
	segs := rel[1:]
	for segs != "" {
		var seg string
		if i := strings.IndexByte(segs, '/'); i >= 0 {
			seg, segs = segs[:i], segs[i+1:]
		} else {
			seg, segs = segs, ""
		}
		switch {
		case seg == "..", seg == ".":
			return http.StatusBadRequest, "dot segment in path"
		case seg != "" && seg[0] == '.' && !h.opts.AllowDotfiles && seg != ".well-known":
			return http.StatusNotFound, "dotfile"
		}
	}
	return 0, ""
}
