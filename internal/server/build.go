package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"gantry/internal/accesslog"
	"gantry/internal/config"
	"gantry/internal/spool"
	"gantry/internal/static"
	"gantry/internal/xsendfile"
)

// state is one generation of the configuration, built and swapped in whole.
type state struct {
	cfg   *config.Config
	hosts *hostTable
	sites []*site
	// handlers are the handlers built for this generation, so that a reload keeps
	// a route's handler (its worker processes, its caches) when neither the route
	// nor its site changed.
	handlers []*built
	// spool reads request bodies for the gateway routes; nil when there are none.
	spool *spool.Spooler
	// restarted names the routes whose worker processes this generation started
	// or restarted, for the reload's report.
	restarted []string
	// inUse counts the requests running on this generation (see useState): a
	// reload stops the handlers it replaced only once it is zero.
	inUse atomic.Int64
}

// useState returns the current generation, counted as in use until the caller
// calls release. A request that read a generation the moment a reload replaced
// it may already have been missed by drain's count: it sees the swap on its
// second read and moves to the new generation, so a generation drain found idle
// takes no more requests.
func (s *Server) useState() *state {
	for {
		st := s.state.Load()
		st.inUse.Add(1)
		if s.state.Load() == st {
			return st
		}
		st.release()
	}
}

func (st *state) release() { st.inUse.Add(-1) }

// drain waits until no request runs on st (replaced by a reload): a request that
// chose one of its handlers, and is still reading its body or waiting for a
// worker, must find that handler running. It gives up when ctx ends.
func (st *state) drain(ctx context.Context, log *slog.Logger) error {
	if n := st.inUse.Load(); n > 0 {
		log.Info("reload: letting requests on the replaced configuration finish", "requests", n)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for st.inUse.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d requests still running on the replaced configuration: %w", st.inUse.Load(), ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// built is a handler with what it was built from.
type built struct {
	kind, path     string
	root, symlinks string // the site's
	opts           config.Options
	h              http.Handler
}

// builds reports whether b is the handler that cr, in site cs, would build: the
// same kind on the same path and site, with options that are Equal.
func (b *built) builds(cs *config.Site, cr *config.Route) bool {
	return b.path == cr.Path && b.root == cs.Root && b.symlinks == cs.Symlinks && b.kind == cr.Kind() && b.opts.Equal(cr.Handler)
}

func (st *state) find(cs *config.Site, cr *config.Route) *built {
	if st == nil {
		return nil
	}
	for _, b := range st.handlers {
		if b.builds(cs, cr) {
			return b
		}
	}
	return nil
}

// keeps reports whether st still uses the handler b.
func (st *state) keeps(b *built) bool {
	return st != nil && slices.Contains(st.handlers, b)
}

// build makes a state for cfg, reusing handlers of prev whose config is unchanged.
func (s *Server) build(ctx context.Context, cfg *config.Config, prev *state) (*state, error) {
	st := &state{cfg: cfg}
	var errs []error
	for i := range cfg.Sites {
		cs := &cfg.Sites[i]
		name := "default"
		if len(cs.Hosts) > 0 {
			name = strings.ToLower(cs.Hosts[0])
		}
		var routes []*route
		var rootRoute *route // the static route serving the site's root at "/"
		hasRoot := false
		for j := range cs.Routes {
			cr := &cs.Routes[j]
			if cr.Path == "/" {
				hasRoot = true
			}
			h, err := s.handlerFor(ctx, st, prev, cs, cr)
			if err != nil {
				errs = append(errs, fmt.Errorf("site %s, route %s: %w", name, cr.Path, err))
				continue
			}
			rt := newRoute(cr, h)
			if rt.body != bodyStream && st.spool == nil {
				if st.spool, err = spool.New(cfg.Server.BodyTemp, 0, int64(cfg.Server.BodyTempMax)); err != nil {
					errs = append(errs, err)
				}
			}
			if so, ok := cr.Handler.(sendfileOptions); ok && so.SendfileDir() != "" {
				if rt.handler, err = s.sendfile(ctx, st, prev, cs, cr, so.SendfileDir(), h); err != nil {
					errs = append(errs, fmt.Errorf("site %s, route %s: sendfile_root: %w", name, cr.Path, err))
					continue
				}
			}
			rt.handler = s.bodyFirst(st, rt.body, rt.handler)
			if err := s.wrap(ctx, cs, cr, rt); err != nil {
				errs = append(errs, fmt.Errorf("site %s, route %s: %w", name, cr.Path, err))
				continue
			}
			if so, ok := cr.Handler.(*static.Options); ok && cr.Path == "/" && so.Root == cs.Root {
				rootRoute = rt
			}
			routes = append(routes, rt)
		}
		// A site's root is served as static files wherever no route says otherwise,
		// as nginx's root and Apache's DocumentRoot are.
		if cs.Root != "" && !hasRoot {
			cr := &config.Route{Path: "/", Handler: &static.Options{Root: cs.Root, Index: staticIndex(cs)}}
			cr.Provision(cs)
			h, err := s.handlerFor(ctx, st, prev, cs, cr)
			if err != nil {
				errs = append(errs, fmt.Errorf("site %s: root %s: %w", name, cs.Root, err))
			} else {
				rootRoute = newRoute(cr, h)
				rootRoute.handler = s.bodyFirst(st, rootRoute.body, rootRoute.handler)
				if err := s.wrap(ctx, cs, cr, rootRoute); err != nil {
					errs = append(errs, fmt.Errorf("site %s: root %s: %w", name, cs.Root, err))
				}
				routes = append(routes, rootRoute)
			}
		}
		si := newSite(name, cs.Hosts, routes)
		t, err := newTryFiles(cs, rootRoute)
		if err != nil {
			errs = append(errs, fmt.Errorf("site %s: try_files: %w", name, err))
		}
		si.try = t
		if t != nil && strings.HasSuffix(t.fallback(), ".php") {
			s.log.Info("PHP front controller: "+t.fallback(), "site", name, "root", cs.Root)
		}
		st.sites = append(st.sites, si)
	}
	if err := errors.Join(errs...); err != nil {
		st.shutdown(context.Background(), prev)
		return nil, err
	}
	st.hosts = newHostTable(st.sites)
	return st, nil
}

// sendfile wraps a gateway route's handler so that its X-Sendfile and
// X-Accel-Redirect answers are served from the route's sendfile_root; the static
// handler doing it is kept across reloads like any route's.
func (s *Server) sendfile(ctx context.Context, st, prev *state, cs *config.Site, cr *config.Route, dir string, app http.Handler) (http.Handler, error) {
	fr := &config.Route{Path: "/", Handler: &static.Options{Root: dir}}
	fr.Provision(cs)
	files, err := s.handlerFor(ctx, st, prev, cs, fr)
	if err != nil {
		return nil, err
	}
	sh, ok := files.(*static.Handler)
	if !ok {
		return nil, fmt.Errorf("%s: not a directory gantry can serve", dir)
	}
	return xsendfile.New(app, dir, sh, s.log.With("component", "xsendfile", "route", cr.Path)), nil
}

// staticIndex is the site's index list for its root's static route, without the
// names another route runs (index.php, when a PHP route matches it): those are
// tried by try_files, never served as files.
func staticIndex(cs *config.Site) []string {
	var out []string
	for _, idx := range cs.Index {
		claimed := false
		for i := range cs.Routes {
			if dir, suf, ok := strings.Cut(cs.Routes[i].Path, "*"); ok && (dir == "" || dir == "/") && strings.HasSuffix(idx, suf) {
				claimed = true
			}
		}
		if !claimed {
			out = append(out, idx)
		}
	}
	return out
}

func (s *Server) handlerFor(ctx context.Context, st, prev *state, cs *config.Site, cr *config.Route) (http.Handler, error) {
	if b := st.find(cs, cr); b != nil {
		return b.h, nil
	}
	if b := prev.find(cs, cr); b != nil {
		if r, ok := b.h.(Reloader); ok {
			if err := r.Reload(ctx); err != nil {
				return nil, fmt.Errorf("reload: %w", err)
			}
			st.restarted = append(st.restarted, routeName(cs, cr))
		}
		st.handlers = append(st.handlers, b)
		return b.h, nil
	}
	kind, ok := config.KindOf(cr.Handler)
	if !ok {
		return nil, fmt.Errorf("route %s has no handler this build knows", cr.Path)
	}
	log := s.log.With("component", kind.Name, "route", cr.Path)
	h, err := kind.New(cr.Handler, config.Env{Ctx: ctx, Site: cs, Route: cr, Software: "gantry/" + s.version, Log: log, Redirect: s.localRedirect})
	if err != nil {
		if cr.Optional {
			// Not kept for the next generation: a reload tries to start it again.
			log.Warn("route disabled: its handler could not start; answering 503 (the route is optional)", "err", err)
			return unavailable(err), nil
		}
		return nil, err
	}
	st.handlers = append(st.handlers, &built{kind: kind.Name, path: cr.Path, root: cs.Root, symlinks: cs.Symlinks, opts: cr.Handler, h: h})
	if p, ok := h.(PoolReporter); ok && prev.hasRoute(cs, cr) && len(p.Workers()) > 0 {
		st.restarted = append(st.restarted, routeName(cs, cr)) // its options changed
	}
	return h, nil
}

// hasRoute reports whether st served route cr's path in site cs (same root).
func (st *state) hasRoute(cs *config.Site, cr *config.Route) bool {
	if st == nil {
		return false
	}
	for _, b := range st.handlers {
		if b.path == cr.Path && b.root == cs.Root {
			return true
		}
	}
	return false
}

// routeName is a route as a reload's report names it: its path, after the
// site's first host when the site has one.
func routeName(cs *config.Site, cr *config.Route) string {
	if len(cs.Hosts) > 0 {
		return cs.Hosts[0] + " " + cr.Path
	}
	return cr.Path
}

// wrap puts the route's middleware around its handler. A wrapped route is
// answered from the static cache only through a middleware that can do it itself
// (headers, compress), never past one; it still runs on the fast path through its
// handler.
func (s *Server) wrap(ctx context.Context, cs *config.Site, cr *config.Route, rt *route) error {
	ms := config.Middlewares()
	for i := len(cr.Middleware) - 1; i >= 0 && i < len(ms); i-- {
		env := config.Env{Ctx: ctx, Site: cs, Route: cr, Software: "gantry/" + s.version, Log: s.log.With("component", ms[i].Name, "route", cr.Path)}
		h, err := ms[i].Wrap(cr.Middleware[i], env, rt.handler)
		if err != nil {
			return fmt.Errorf("%s: %w", ms[i].Name, err)
		}
		if h != nil {
			rt.handler = h
			if rt.cached != nil {
				rt.cached, _ = h.(CachedServer)
			}
		}
	}
	return nil
}

// newRoute is the route cr, served by h.
func newRoute(cr *config.Route, h http.Handler) *route {
	rt := &route{path: cr.Path, kind: cr.Kind(), target: cr.Target(), handler: h, app: h, body: bodyModeFor(cr)}
	rt.fast, _ = h.(FastServer)
	rt.cached, _ = h.(CachedServer)
	return rt
}

// unavailable answers 503 for an optional route whose handler could not start.
func unavailable(cause error) http.Handler {
	msg := "503 service unavailable: this part of the site is not running on this server.\n"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(msg))
	})
}

// shutdown stops the handlers of st that keep processes or goroutines, except those
// that next (the state replacing st) still uses.
func (st *state) shutdown(ctx context.Context, next *state) error {
	if st == nil {
		return nil
	}
	var errs []error
	for _, b := range st.handlers {
		if next.keeps(b) {
			continue
		}
		if sd, ok := b.h.(Shutdowner); ok {
			if err := sd.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Reload re-reads the config file and swaps it in for new requests. On any error the
// running config keeps serving and the error is returned (and logged).
func (s *Server) Reload(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.state.Load()
	res, err := s.reload(ctx, old)
	res.Time, res.OK = time.Now(), err == nil
	s.lastReload = res
	if err != nil {
		s.lastReload.Error = err.Error()
		s.log.Error("reload failed; the previous configuration keeps serving", "err", err)
		return err
	}
	s.log.Info("configuration reloaded", "file", old.cfg.File)
	return nil
}

// reload builds and swaps in the config file's new generation, and says what
// now serves.
func (s *Server) reload(ctx context.Context, old *state) (ReloadResult, error) {
	var res ReloadResult
	if old.cfg.File == "" {
		return res, errors.New("reload: gantry was started without a config file (-c FILE): nothing to re-read")
	}
	cfg, err := config.Load(old.cfg.File)
	if err != nil {
		return res, err
	}
	res.RestartOnly = restartOnly(old.cfg, cfg)
	for _, w := range res.RestartOnly {
		s.log.Warn("reload: setting changed but takes effect only on restart", "setting", w)
	}
	st, err := s.build(ctx, cfg, old)
	if err != nil {
		return res, err
	}
	if cfg.Server.AccessLog != old.cfg.Server.AccessLog || cfg.Server.LogFormat != old.cfg.Server.LogFormat {
		al, err := accesslog.Open(cfg.Server.AccessLog, cfg.Server.LogFormat)
		if err != nil {
			st.shutdown(ctx, old)
			return res, err
		}
		prevLog := s.accessLog.Swap(al)
		defer prevLog.Close()
	}
	s.state.Store(st)
	if s.certs != nil {
		s.certs.Update(cfg)
	}
	// The old generation's own handlers finish their in-flight requests and stop.
	// A handler the old generation kept from an earlier one may still serve
	// requests counted on that one: they are waited for too, the generations
	// retiring in order.
	earlier, retired := s.retired, make(chan struct{})
	s.retired = retired
	go func() {
		defer close(retired)
		sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.D())
		defer cancel()
		if err := old.drain(sctx, s.log); err != nil {
			s.log.Warn("reload: waiting for requests on the replaced configuration", "err", err)
		}
		if earlier != nil {
			select {
			case <-earlier:
			default:
				s.log.Info("reload: waiting for an earlier reload's requests to finish")
				select {
				case <-earlier:
				case <-sctx.Done():
					s.log.Warn("reload: waiting for an earlier reload's requests", "err", sctx.Err())
				}
			}
		}
		if err := old.shutdown(sctx, st); err != nil {
			s.log.Warn("reload: stopping replaced handlers", "err", err)
		}
	}()
	res.Sites, res.Restarted = len(st.sites), st.restarted
	for _, si := range st.sites {
		res.Routes += len(si.routes)
	}
	return res, nil
}

// restartOnly lists settings that a reload cannot apply to running listeners.
func restartOnly(a, b *config.Config) []string {
	var out []string
	checks := []struct {
		name string
		a, b any
	}{
		{"[server] listen", a.Server.Listen, b.Server.Listen},
		{"[server] tls_listen", a.Server.TLSListen, b.Server.TLSListen},
		{"[tls] email, ca, ca_root, storage", []string{a.TLS.Email, a.TLS.CA, a.TLS.CARoot, a.TLS.Storage}, []string{b.TLS.Email, b.TLS.CA, b.TLS.CARoot, b.TLS.Storage}},
		{"[server] user", a.Server.User, b.Server.User},
		{"[server] timeouts", []any{a.Server.ReadHeaderTimeout, a.Server.ReadTimeout, a.Server.WriteTimeout, a.Server.IdleTimeout, a.Server.MaxHeader},
			[]any{b.Server.ReadHeaderTimeout, b.Server.ReadTimeout, b.Server.WriteTimeout, b.Server.IdleTimeout, b.Server.MaxHeader}},
		{"[admin]", a.Admin, b.Admin},
		{"[telescope]", a.Telescope, b.Telescope},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.a, c.b) {
			out = append(out, c.name)
		}
	}
	return out
}

// localRedirect serves r (whose URL a CGI script's local Location rewrote) as if it
// had arrived so, through whichever route now matches it (RFC 3875 §6.2.2).
func (s *Server) localRedirect(w http.ResponseWriter, r *http.Request) {
	// The script's Location is normalised as a client's path is, so that it
	// picks the route (and that route's auth) the same path would.
	if !s.cleanPath(w, r) {
		return
	}
	st := s.state.Load()
	site, _ := st.hosts.lookup(r.Host)
	if site == nil {
		http.NotFound(w, r)
		return
	}
	rt := site.match(r.URL.Path)
	if rt == nil {
		http.NotFound(w, r)
		return
	}
	rt.handler.ServeHTTP(w, r)
}
