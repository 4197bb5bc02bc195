// Package compress compresses responses on the fly with zstd, brotli or gzip, as
// nginx's gzip module and Caddy's encode directive do: text-like bodies of any
// handler, in the coding the client's Accept-Encoding rates best. A response the
// handler already encoded (a static file's precompressed sibling, a backend's own
// gzip) passes untouched.
package compress

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"gantry/internal/config"
)

// DefaultCodings are the codings of a site or route that does not set compress,
// in order of preference: zstd and brotli give smaller bodies than gzip, which
// every client has.
var DefaultCodings = []string{"zstd", "br", "gzip"}

// Options are the compress key of a site or a route.
type Options struct {
	// Compress lists the codings that text-like responses (text/*, JSON,
	// JavaScript, XML, SVG, wasm, fonts without their own compression) of 512
	// bytes or more are compressed with, by preference when the client accepts
	// several equally: any of "zstd", "br", "gzip". Default ["zstd", "br", "gzip"];
	// a route without the key takes its site's. false or [] turns compression
	// off, true is the default list. Never compressed: ranges, HEAD, 204 and 304,
	// responses that carry a Content-Encoding (precompressed .gz/.br files win)
	// or Cache-Control: no-transform.
	// Example: compress = ["gzip"]
	Compress Setting `toml:"compress"`

	codings []*coding // provisioned: the list in effect, nil for off
}

// Setting is the compress key's value: a list of codings, or true or false.
type Setting struct {
	set   bool
	names []string // with set: nil for true (the default list); empty for off
}

// UnmarshalTOML accepts a list of coding names or a boolean.
func (s *Setting) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case bool:
		s.set, s.names = true, nil
		if !v {
			s.names = []string{}
		}
	case []any:
		s.set, s.names = true, make([]string, 0, len(v))
		for _, e := range v {
			name, ok := e.(string)
			if !ok {
				return fmt.Errorf("want a list of codings (\"zstd\", \"br\", \"gzip\") or true/false, not a list holding %T", e)
			}
			s.names = append(s.names, name)
		}
	default:
		return fmt.Errorf("want a list of codings (\"zstd\", \"br\", \"gzip\") or true/false, not %T", v)
	}
	return nil
}

// MarshalText shows the setting as written: unset, true, false or the list.
func (s Setting) MarshalText() ([]byte, error) {
	switch {
	case !s.set:
		return []byte("unset"), nil
	case s.names == nil:
		return []byte("true"), nil
	case len(s.names) == 0:
		return []byte("false"), nil
	}
	return fmt.Appendf(nil, "%q", s.names), nil
}

// Middleware is the compress middleware.
var Middleware = config.Middleware{
	Name:    "compress",
	Options: func() config.Settings { return new(Options) },
	Wrap:    wrap,
}

var _ config.Settings = (*Options)(nil)

// names is the list in effect for these options alone: its own, else def.
func (o *Options) names(def []string) []string {
	switch {
	case !o.Compress.set:
		return def
	case o.Compress.names == nil:
		return DefaultCodings
	}
	return o.Compress.names
}

// Provision implements config.Settings: a route without the key takes its site's
// list.
func (o *Options) Provision(s *config.Scope) {
	def := DefaultCodings
	if s != nil && s.Route != nil {
		if site, ok := s.SiteDefault(o).(*Options); ok {
			def = site.names(DefaultCodings)
		}
	}
	o.codings = nil
	for _, n := range o.names(def) {
		if c := codingNamed(n); c != nil && !slices.Contains(o.codings, c) {
			o.codings = append(o.codings, c)
		}
	}
}

// Validate implements config.Settings.
func (o *Options) Validate(*config.Scope) []config.Problem {
	var probs []config.Problem
	seen := map[string]bool{}
	for _, n := range o.Compress.names {
		switch {
		case codingNamed(n) == nil:
			probs = append(probs, config.Problemf("compress", "compress: unknown coding %q: use \"zstd\", \"br\" or \"gzip\"", n))
		case seen[n]:
			probs = append(probs, config.Problemf("compress", "compress: %q is listed twice", n))
		}
		seen[n] = true
	}
	return probs
}

// cachedServer is a handler that can answer from memory on the fast path
// (server.CachedServer); the middleware keeps that ability for its handler.
type cachedServer interface {
	ServeCached(w http.ResponseWriter, r *http.Request) bool
}

func wrap(c config.Settings, env config.Env, next http.Handler) (http.Handler, error) {
	cs := c.(*Options).codings
	if len(cs) == 0 {
		return nil, nil
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{next: next, codings: cs, log: log}
	if cached, ok := next.(cachedServer); ok {
		return &cachedHandler{handler: h, cached: cached}, nil
	}
	return h, nil
}

// handler compresses next's responses.
type handler struct {
	next    http.Handler
	codings []*coding
	log     *slog.Logger
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cw := h.writer(w, r)
	if cw == nil {
		h.next.ServeHTTP(w, r)
		return
	}
	defer cw.release()
	h.next.ServeHTTP(cw, r)
	cw.finish()
}

// writer returns the compressing writer for r's response, or nil when the client
// accepts none of the codings: then the response goes out as the handler makes
// it, with no Vary, as Caddy's encode does (a cache may keep and hand out that
// identity response to anyone).
func (h *handler) writer(w http.ResponseWriter, r *http.Request) *writer {
	head := r.Method == http.MethodHead
	if _, ranged := r.Header["Range"]; ranged || head {
		// The identity, but with the Vary a GET of the same resource gets.
		return &writer{ResponseWriter: w, head: head, log: h.log, uri: r.RequestURI}
	}
	ae, present := headerValue(r.Header, "Accept-Encoding")
	i := negotiate(ae, present, h.codings)
	if i < 0 {
		return nil
	}
	return &writer{ResponseWriter: w, log: h.log, uri: r.RequestURI, coding: h.codings[i]}
}

// cachedHandler is handler over a handler that answers from memory: a cached
// static file is compressed on the fast path too.
type cachedHandler struct {
	*handler
	cached cachedServer
}

// ServeCached implements server.CachedServer.
func (h *cachedHandler) ServeCached(w http.ResponseWriter, r *http.Request) bool {
	cw := h.writer(w, r)
	if cw == nil {
		return h.cached.ServeCached(w, r)
	}
	defer cw.release()
	if !h.cached.ServeCached(cw, r) {
		return false
	}
	cw.finish()
	return true
}

// headerValue returns a request header's value; repeated lines are joined as one
// list (RFC 9110 §5.3). The common single line costs no allocation.
func headerValue(hdr http.Header, key string) (string, bool) {
	switch v := hdr[key]; len(v) {
	case 0:
		return "", false
	case 1:
		return v[0], true
	default:
		s := v[0]
		for _, x := range v[1:] {
			s += "," + x
		}
		return s, true
	}
}
