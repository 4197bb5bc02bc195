package config

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
)

// Route maps a path pattern to one handler.
type Route struct {
	// Path: "/x/" prefix, "/x" exact, "*.php" or "/blog/*.php" suffix. Longest wins.
	Path string `toml:"path"`
	// Optional: when the handler cannot start (say php-cgi is not installed), log why
	// and answer 503 on this route instead of refusing to start. Default false.
	Optional bool `toml:"optional"`
	// Handler is the route's handler options: the struct of the handler kind that
	// the route's keys select (static = "..." selects the static kind's), with every
	// other key of the route decoded into it.
	Handler Options `toml:"-"`
	// Middleware holds the options of each registered middleware (headers,
	// compression, ...), in registration order, decoded from the route's keys.
	Middleware []Settings `toml:"-"`
}

// Settings are keys decoded into a struct whose toml tags are the keys and whose
// field comments are their reference: a middleware's options, and the part of a
// handler kind's Options that config itself uses.
type Settings interface {
	// Provision fills in the defaults and makes relative paths absolute. It runs
	// once, before Validate; a handler's New may rely on it having run.
	Provision(s *Scope)
	// Validate returns every problem with the options, each naming its key.
	Validate(s *Scope) []Problem
}

// Options is a handler kind's options: Settings, and what the server needs to
// show the route and to keep its handler across a reload.
type Options interface {
	Settings
	// Target is the handler's main value (a directory, an address), for display.
	Target() string
	// Equal reports whether o builds the same handler as other, so that a reload
	// keeps the running handler (its worker processes, its caches). The keys the
	// server applies around the handler (config.Body, config.Sendfile) are left
	// out: changing them needs no restart.
	Equal(other Options) bool
}

// Kind is a route handler kind: what selects it and how its handler is built.
type Kind struct {
	// Name is the kind, and the route key that selects it ("static").
	Name string
	// Also lists other keys that select the kind ("fastcgi_command").
	Also []string
	// Options returns new, empty options (a pointer to the kind's struct) for a
	// route's keys to be decoded into.
	Options func() Options
	// New builds the route's handler from options that Provision and Validate
	// have seen.
	New func(opts Options, env Env) (http.Handler, error)
}

// Middleware is an option every route takes, and a site too as its routes'
// default: its keys decode into options of its own, and it wraps the route's
// handler.
type Middleware struct {
	// Name names it in logs.
	Name string
	// Options returns new, empty options (a pointer to a struct) for a site's or a
	// route's keys to be decoded into; a middleware is rebuilt on every reload, so
	// they need no Target or Equal.
	Options func() Settings
	// Wrap returns next wrapped in the middleware, or nil when the options ask
	// for nothing.
	Wrap func(opts Settings, env Env, next http.Handler) (http.Handler, error)
}

// Env is what the server gives a handler besides its options.
type Env struct {
	// Ctx lives as long as the server; handlers that start processes bind them to it.
	Ctx context.Context
	// Site is the route's site (its root, index, symlink policy).
	Site *Site
	// Route is the route being built.
	Route *Route
	// Software is SERVER_SOFTWARE ("gantry/1.2.3").
	Software string
	// Log is the handler's logger, already naming its component and route.
	Log *slog.Logger
	// Redirect serves a request, rewritten by the handler, through whichever of the
	// server's routes now matches it (a CGI local redirect, RFC 3875 §6.2.2).
	Redirect http.HandlerFunc
}

// Scope is what a handler's options see of the config around them while they are
// provisioned and validated.
type Scope struct {
	// Site is the route's site, its defaults already filled in.
	Site *Site
	// Route is the route whose options these are.
	Route *Route
	base  string          // the config file's directory: relative paths start there
	keys  map[string]bool // the keys the route's text sets; nil for routes built in code
}

// Abs makes a relative path relative to the config file's directory, so that a
// site and its config can move together.
func (s *Scope) Abs(p string) string {
	if p == "" || filepath.IsAbs(p) || s.base == "" {
		return p
	}
	return filepath.Join(s.base, p)
}

// Has reports whether the route's text sets key.
func (s *Scope) Has(key string) bool { return s.keys[key] }

// registry holds the handler kinds a binary has, in their registration order.
var registry struct {
	kinds      []Kind
	byType     map[reflect.Type]*Kind
	middleware []Middleware
	// the keys every route takes, and each kind's, from the structs' tags
	common []string
	byKind map[string][]string
}

// RegisterMiddleware makes middleware known to config: their keys become keys of
// every site and route.
func RegisterMiddleware(ms ...Middleware) {
	registry.middleware = append(registry.middleware, ms...)
	indexKeys()
}

// Middlewares lists the registered middleware, in the order of a route's
// Middleware.
func Middlewares() []Middleware { return registry.middleware }

// SiteDefault returns the options that the route's site gives the same middleware
// as o (its routes' default), or nil.
func (s *Scope) SiteDefault(o Settings) Settings {
	if s.Site == nil {
		return nil
	}
	for _, so := range s.Site.Middleware {
		if reflect.TypeOf(so) == reflect.TypeOf(o) {
			return so
		}
	}
	return nil
}

// Register makes handler kinds known to config: their keys become route keys. The
// server registers gantry's kinds when it is initialised.
func Register(kinds ...Kind) {
	if registry.byType == nil {
		registry.byType = map[reflect.Type]*Kind{}
	}
	for _, k := range kinds {
		registry.kinds = append(registry.kinds, k)
	}
	for i := range registry.kinds {
		k := &registry.kinds[i]
		registry.byType[reflect.TypeOf(k.Options())] = k
	}
	indexKeys()
}

// KindOf returns the kind whose options o are.
func KindOf(o Options) (*Kind, bool) {
	if o == nil {
		return nil, false
	}
	k, ok := registry.byType[reflect.TypeOf(o)]
	return k, ok
}

// selects reports whether key selects kind k.
func (k *Kind) selects(key string) bool { return key == k.Name || slices.Contains(k.Also, key) }

// Kind names the route's handler kind ("" when it has none).
func (r *Route) Kind() string {
	if k, ok := KindOf(r.Handler); ok {
		return k.Name
	}
	return ""
}

// Target is the handler's main value, for display.
func (r *Route) Target() string {
	if r.Handler == nil {
		return ""
	}
	return r.Handler.Target()
}

// Provision fills in the defaults of a route built in code for site (whose own
// defaults are filled in), as a config file's routes get them.
func (r *Route) Provision(site *Site) {
	sc := &Scope{Site: site, Route: r}
	if r.Handler != nil {
		r.Handler.Provision(sc)
	}
	r.provisionMiddleware(sc)
}

// provisionMiddleware provisions the route's middleware options, making them
// first when the route was built in code.
func (r *Route) provisionMiddleware(sc *Scope) {
	if r.Middleware == nil {
		for _, m := range registry.middleware {
			r.Middleware = append(r.Middleware, m.Options())
		}
	}
	for _, o := range r.Middleware {
		o.Provision(sc)
	}
}

// Body is the request_buffering key of the routes whose handler hands request
// bodies to another process (cgi, fastcgi, wsgi).
type Body struct {
	// RequestBuffering (default true) reads the whole request body before a gateway
	// sees it. false streams it to the worker as it arrives: a slow client then
	// holds a worker, and a chunked body reaches a WSGI app with no CONTENT_LENGTH
	// (wsgi.input_terminated is set; CGI and FastCGI still spool a chunked body, as
	// they need its length).
	RequestBuffering *bool `toml:"request_buffering"`
}

// Buffered reports whether request bodies are read in full before the handler runs.
func (b Body) Buffered() bool { return b.RequestBuffering == nil || *b.RequestBuffering }

// Sendfile is the sendfile_root key of the routes whose application may answer
// with a file to send (fastcgi, wsgi).
type Sendfile struct {
	// SendfileRoot lets the application answer with an X-Sendfile (an absolute
	// path) or X-Accel-Redirect (a path relative to this directory) header instead
	// of a body: gantry serves that file, with Range, ETag and sendfile, and drops
	// the header. Only files under this directory; default none (the headers are
	// passed to the client untouched).
	SendfileRoot string `toml:"sendfile_root"`
}

// SendfileDir is the directory X-Sendfile answers are served from ("" for none).
func (s Sendfile) SendfileDir() string { return s.SendfileRoot }

// Provision makes the directory absolute.
func (s *Sendfile) Provision(sc *Scope) { s.SendfileRoot = sc.Abs(s.SendfileRoot) }

// Validate checks that the directory exists.
func (s Sendfile) Validate() []Problem {
	if s.SendfileRoot == "" {
		return nil
	}
	return CheckDir("sendfile_root", "sendfile_root", s.SendfileRoot)
}

// keysOf lists the toml keys of struct type t (a pointer to one is followed),
// those of its embedded structs included.
func keysOf(t reflect.Type) []string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		switch {
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			keys = append(keys, keysOf(f.Type)...)
		case name == "-" || !f.IsExported():
		case name == "":
			keys = append(keys, f.Name)
		default:
			keys = append(keys, name)
		}
	}
	return keys
}

// routeKeys lists the keys every route takes and those of each kind.
func routeKeys() (common []string, byKind map[string][]string) {
	return registry.common, registry.byKind
}

// indexKeys reads, once per registration rather than per route, the keys of the
// registered kinds and middleware from their structs' tags.
func indexKeys() {
	registry.byKind = map[string][]string{}
	for i := range registry.kinds {
		k := &registry.kinds[i]
		registry.byKind[k.Name] = keysOf(reflect.TypeOf(k.Options()))
	}
	registry.common = keysOf(reflect.TypeOf(Route{}))
	for _, m := range registry.middleware {
		registry.common = append(registry.common, keysOf(reflect.TypeOf(m.Options()))...)
	}
}

// appliesTo names the kinds that take key.
func appliesTo(key string) string {
	_, byKind := routeKeys()
	var kinds []string
	for _, k := range registry.kinds {
		if slices.Contains(byKind[k.Name], key) {
			kinds = append(kinds, k.Name)
		}
	}
	if len(kinds) == 0 {
		return "no route"
	}
	return strings.Join(kinds, ", ")
}

// selectorKeys lists every key that selects a kind, for the "has no handler" message.
func selectorKeys() string {
	var keys []string
	for _, k := range registry.kinds {
		keys = append(keys, k.Name)
		keys = append(keys, k.Also...)
	}
	return strings.Join(keys, ", ")
}

// kindsSelected lists the kinds that the keys select, in registration order.
func kindsSelected(keys map[string]int) []*Kind {
	var out []*Kind
	for i := range registry.kinds {
		k := &registry.kinds[i]
		for key := range keys {
			if k.selects(key) {
				out = append(out, k)
				break
			}
		}
	}
	return out
}
