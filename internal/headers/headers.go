// Package headers changes the headers of a route's responses, as nginx's
// add_header and Caddy's header directive do: set, add or remove fields on every
// response the route sends, error pages included.
package headers

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"gantry/internal/config"
	"gantry/internal/httpfield"
)

// Options are the headers key of a site or a route.
type Options struct {
	// Headers changes the header fields of every response: "Name" = "value" sets the
	// field (replacing what the application sent), "+Name" = "value" adds one more
	// value, "-Name" = "" removes it. A site's headers apply to all its routes; a
	// route's own apply after them, so they win. Framing fields (Content-Length,
	// Transfer-Encoding, Connection and the like) cannot be changed.
	// Example: headers = { "Cache-Control" = "public, max-age=3600", "-Server" = "" }
	Headers config.Strings `toml:"headers"`

	rules []rule // the site's rules, then the route's: applied in that order
}

type op byte

// The order rules of one table run in: removals, sets, additions.
const (
	opDel op = iota
	opSet
	opAdd
)

type rule struct {
	op    op
	name  string // canonical
	value string
}

// Middleware is the headers middleware.
var Middleware = config.Middleware{
	Name:    "headers",
	Options: func() config.Settings { return new(Options) },
	Wrap:    wrap,
}

var _ config.Settings = (*Options)(nil)

// framing fields describe the message or the connection, which gantry alone sets.
var framing = map[string]bool{
	"Content-Length": true, "Transfer-Encoding": true, "Connection": true, "Keep-Alive": true,
	"Te": true, "Trailer": true, "Upgrade": true, "Proxy-Connection": true,
}

// parse turns the key's map into rules, in a stable order: removals, then sets,
// then additions, each by name, so that a map's random order never shows.
func parse(h map[string]string) ([]rule, []string) {
	var rules []rule
	var bad []string
	for _, k := range slices.Sorted(maps.Keys(h)) {
		r := rule{op: opSet, value: h[k]}
		name := k
		switch {
		case strings.HasPrefix(k, "-"):
			r.op, name = opDel, k[1:]
		case strings.HasPrefix(k, "+"):
			r.op, name = opAdd, k[1:]
		}
		r.name = textproto.CanonicalMIMEHeaderKey(name)
		switch {
		case !httpfield.ValidName(name):
			bad = append(bad, fmt.Sprintf("headers: %q is not a header field name", k))
		case framing[r.name]:
			bad = append(bad, fmt.Sprintf("headers: %s describes the message's framing, which gantry sets itself", r.name))
		case !httpfield.ValidValue(r.value) || strings.ContainsAny(r.value, "\r\n"):
			bad = append(bad, fmt.Sprintf("headers: the value of %q has a control character", k))
		default:
			rules = append(rules, r)
		}
	}
	slices.SortStableFunc(rules, func(a, b rule) int { return int(a.op) - int(b.op) })
	return rules, bad
}

// Provision implements config.Settings: the rules are the site's, then the route's.
func (o *Options) Provision(s *config.Scope) {
	o.rules = nil
	if s.Route != nil {
		if site, ok := s.SiteDefault(o).(*Options); ok {
			siteRules, _ := parse(site.Headers)
			o.rules = siteRules
		}
	}
	own, _ := parse(o.Headers)
	o.rules = append(o.rules, own...)
}

// Validate implements config.Settings.
func (o *Options) Validate(*config.Scope) []config.Problem {
	_, bad := parse(o.Headers)
	probs := make([]config.Problem, len(bad))
	for i, b := range bad {
		probs[i] = config.Problemf("headers", "%s", b)
	}
	return probs
}

func wrap(c config.Settings, _ config.Env, next http.Handler) (http.Handler, error) {
	rules := c.(*Options).rules
	if len(rules) == 0 {
		return nil, nil
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&writer{ResponseWriter: w, rules: rules}, r)
	})
	if c, ok := next.(cachedServer); ok {
		return &cachedHandler{Handler: h, cached: c, rules: rules}, nil
	}
	return h, nil
}

// cachedServer is a handler that answers from memory on the fast path when it
// can (the server's CachedServer).
type cachedServer interface {
	ServeCached(w http.ResponseWriter, r *http.Request) bool
}

// cachedHandler keeps a static route's cache on the fast path: the rules apply
// to a cached answer as to any, when it is written.
type cachedHandler struct {
	http.Handler
	cached cachedServer
	rules  []rule
}

// ServeCached implements the server's CachedServer.
func (h *cachedHandler) ServeCached(w http.ResponseWriter, r *http.Request) bool {
	return h.cached.ServeCached(&writer{ResponseWriter: w, rules: h.rules}, r)
}

// writer applies the rules to the header just before it goes out.
type writer struct {
	http.ResponseWriter
	rules []rule
	done  bool
}

func (w *writer) apply() {
	if w.done {
		return
	}
	w.done = true
	h := w.ResponseWriter.Header()
	for _, r := range w.rules {
		switch r.op {
		case opDel:
			delete(h, r.name)
		case opSet:
			h[r.name] = []string{r.value}
		case opAdd:
			h[r.name] = append(h[r.name], r.value)
		}
	}
}

func (w *writer) WriteHeader(code int) {
	if code >= 200 {
		w.apply()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *writer) Write(b []byte) (int, error) {
	w.apply()
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps sendfile for file bodies.
func (w *writer) ReadFrom(src io.Reader) (int64, error) {
	w.apply()
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
}

// Flush keeps streamed responses streaming.
func (w *writer) Flush() {
	w.apply()
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController and abort.Mark reach the writer beneath.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
