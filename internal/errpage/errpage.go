// Package errpage answers a route's error responses with a page of the site, as
// nginx's error_page and Apache's ErrorDocument do: when the route answers a GET or
// HEAD with a status that has a page, the page's file is sent instead of the
// route's body, with the route's status kept.
package errpage

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gantry/internal/config"
	"gantry/internal/fsroot"
)

// Options are the errors key of a site or a route.
type Options struct {
	// Errors maps an error status (400 to 599) to a file of the site's root, by its
	// URL path, sent for the route's GET and HEAD answers of that status: the
	// status stays, the body and its type are the file's. A site's pages apply to
	// all its routes; a route's own entries replace the site's for their status.
	// When the file cannot be opened, the route's own answer goes out unchanged.
	// Example: errors = { 404 = "/404.html", 500 = "/50x.html" }
	Errors config.Strings `toml:"errors"`

	pages map[int]string // status → the page's name under the site's root
}

// Middleware is the error-page middleware.
var Middleware = config.Middleware{
	Name:    "errors",
	Options: func() config.Settings { return new(Options) },
	Wrap:    wrap,
}

var _ config.Settings = (*Options)(nil)

// parse checks the key's table: statuses 400 to 599, pages as clean absolute URL
// paths of a file.
func parse(m map[string]string) (map[int]string, []string) {
	pages := map[int]string{}
	var bad []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		code, err := strconv.Atoi(k)
		if err != nil || code < 400 || code > 599 || strconv.Itoa(code) != k {
			bad = append(bad, fmt.Sprintf("%q is not an error status: use 400 to 599", k))
			continue
		}
		p := m[k]
		if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || path.Clean(p) != p ||
			strings.ContainsAny(p, "\x00\\?#") {
			bad = append(bad, fmt.Sprintf("%d: %q is not a file's path under the site's root, like \"/404.html\"", code, p))
			continue
		}
		pages[code] = p[1:]
	}
	return pages, bad
}

// Provision implements config.Settings: the site's pages, then the route's own.
func (o *Options) Provision(s *config.Scope) {
	o.pages = map[int]string{}
	if s.Route != nil {
		if site, ok := s.SiteDefault(o).(*Options); ok {
			sp, _ := parse(site.Errors)
			maps.Copy(o.pages, sp)
		}
	}
	own, _ := parse(o.Errors)
	maps.Copy(o.pages, own)
}

// Validate implements config.Settings.
func (o *Options) Validate(s *config.Scope) []config.Problem {
	_, bad := parse(o.Errors)
	var probs []config.Problem
	for _, b := range bad {
		probs = append(probs, config.Problemf("errors", "%s", b))
	}
	if len(o.Errors) > 0 && s.Site != nil && s.Site.Root == "" {
		probs = append(probs, config.Problemf("errors", "the site has no root to find the pages in: set the site's root"))
	}
	return probs
}

func wrap(c config.Settings, env config.Env, next http.Handler) (http.Handler, error) {
	pages := c.(*Options).pages
	if len(pages) == 0 || env.Site == nil || env.Site.Root == "" {
		return nil, nil
	}
	mode, err := fsroot.ParseMode(env.Site.Symlinks)
	if err != nil {
		return nil, err
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{next: next, pages: pages, root: env.Site.Root, mode: mode, log: log}
	if cached, ok := next.(cachedServer); ok {
		return &cachedHandler{handler: h, cached: cached}, nil
	}
	return h, nil
}

type handler struct {
	next  http.Handler
	pages map[int]string
	root  string
	mode  fsroot.Mode
	log   *slog.Logger
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.next.ServeHTTP(w, r)
		return
	}
	h.next.ServeHTTP(&writer{ResponseWriter: w, h: h, head: r.Method == http.MethodHead}, r)
}

// cachedServer is a handler that answers from memory (the static cache); it only
// ever answers files that exist, so what it answers passes through.
type cachedServer interface {
	ServeCached(w http.ResponseWriter, r *http.Request) bool
}

type cachedHandler struct {
	*handler
	cached cachedServer
}

// ServeCached implements server.CachedServer.
func (h *cachedHandler) ServeCached(w http.ResponseWriter, r *http.Request) bool {
	return h.cached.ServeCached(w, r)
}

// representation fields describe the route's body, which the page replaces.
var representation = []string{"Content-Type", "Content-Length", "Content-Encoding", "Content-Range",
	"Content-Language", "Content-Location", "Content-Disposition", "Etag", "Last-Modified", "Accept-Ranges"}

// maxDiscard bounds the route's body dropped after its page was sent: the short
// body of an ordinary error answer is drained quietly, so that its backend's
// connection stays reusable; a longer or endless one (a proxied event stream, a
// script that keeps printing) is told by a failed write to stop.
const maxDiscard = 64 << 10

// errReplaced is what the route's writes get once maxDiscard is spent; handlers
// treat ErrBodyNotAllowed as a body the status does not want, not a failure.
var errReplaced = fmt.Errorf("errpage: the answer's body was replaced by the site's error page: %w", http.ErrBodyNotAllowed)

// writer holds back the route's answer when its status has a page.
type writer struct {
	http.ResponseWriter
	h         *handler
	head      bool
	wrote     bool  // the status line has gone out
	replaced  bool  // the page was sent: the route's body is dropped
	discarded int64 // bytes of the route's body dropped so far
}

func (w *writer) WriteHeader(code int) {
	if w.wrote || code < 200 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wrote = true
	if name, ok := w.h.pages[code]; ok && w.page(code, name) {
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

// page sends the file name with status code; false when it cannot be opened, so
// that the route's own answer goes out.
func (w *writer) page(code int, name string) bool {
	root, err := fsroot.Open(w.h.root, w.h.mode)
	if err != nil {
		w.h.log.Warn("error page: cannot open the site's root; sending the route's own answer", "root", w.h.root, "err", err)
		return false
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		w.h.log.Warn("error page: cannot open the page; sending the route's own answer: check the errors key", "status", code, "page", "/"+name, "err", err)
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		w.h.log.Warn("error page: not a regular file; sending the route's own answer", "status", code, "page", "/"+name)
		return false
	}
	hdr := w.ResponseWriter.Header()
	for _, k := range representation {
		delete(hdr, k)
	}
	ctype := mime.TypeByExtension(filepath.Ext(name))
	if ctype == "" {
		ctype = "text/html; charset=utf-8"
	}
	hdr.Set("Content-Type", ctype)
	hdr.Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	w.replaced = true
	w.ResponseWriter.WriteHeader(code)
	if !w.head {
		if _, err := io.Copy(w.ResponseWriter, f); err != nil {
			w.h.log.Debug("error page: sending the page", "page", "/"+name, "err", err)
		}
	}
	// Out now: the route may go on writing (and be drained) for a while, and the
	// client should not wait for a body it will never see.
	if err := http.NewResponseController(w.ResponseWriter).Flush(); err != nil {
		w.h.log.Debug("error page: flushing the page", "page", "/"+name, "err", err)
	}
	return true
}

func (w *writer) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		if w.discarded += int64(len(b)); w.discarded > maxDiscard {
			return 0, errReplaced
		}
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps sendfile for file bodies.
func (w *writer) ReadFrom(src io.Reader) (int64, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		n, err := io.Copy(io.Discard, io.LimitReader(src, maxDiscard-w.discarded+1))
		if w.discarded += n; err == nil && w.discarded > maxDiscard {
			err = errReplaced
		}
		return n, err
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
}

// Flush keeps streamed responses streaming.
func (w *writer) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		return
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController and abort.Mark reach the writer beneath.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
