package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
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
	// handlers by identity key, so a reload keeps a route's handler (and its worker
	// processes and caches) when neither the route nor its site root changed.
	handlers map[string]http.Handler
	// spool reads request bodies for the gateway routes; nil when there are none.
	spool *spool.Spooler
}

// routeKey identifies a route's configuration: equal keys build equal handlers.
func routeKey(si *config.Site, r *config.Route) string {
	return fmt.Sprintf("%s|%s|%#v", si.Root, si.Symlinks, *r)
}

// build makes a state for cfg, reusing handlers of prev whose config is unchanged.
func (s *Server) build(ctx context.Context, cfg *config.Config, prev *state) (*state, error) {
	st := &state{cfg: cfg, handlers: map[string]http.Handler{}}
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
			rt := &route{path: cr.Path, kind: cr.Kind(), target: cr.Target(), handler: h, app: h, body: bodyModeFor(cr)}
			if rt.body != bodyStream && st.spool == nil {
				if st.spool, err = spool.New(cfg.Server.BodyTemp, 0, int64(cfg.Server.BodyTempMax)); err != nil {
					errs = append(errs, err)
				}
			}
			if cr.SendfileRoot != "" {
				if rt.handler, err = s.sendfile(ctx, st, prev, cs, cr, h); err != nil {
					errs = append(errs, fmt.Errorf("site %s, route %s: sendfile_root: %w", name, cr.Path, err))
					continue
				}
			}
			if cr.Path == "/" && cr.Kind() == config.KindStatic && cr.Static == cs.Root {
				rootRoute = rt
			}
			routes = append(routes, rt)
		}
		// A site's root is served as static files wherever no route says otherwise,
		// as nginx's root and Apache's DocumentRoot are.
		if cs.Root != "" && !hasRoot {
			cr := &config.Route{Path: "/", Static: cs.Root, Index: staticIndex(cs)}
			cr.SetDefaults()
			h, err := s.handlerFor(ctx, st, prev, cs, cr)
			if err != nil {
				errs = append(errs, fmt.Errorf("site %s: root %s: %w", name, cs.Root, err))
			} else {
				rootRoute = &route{path: "/", kind: config.KindStatic, target: cs.Root, handler: h, app: h}
				routes = append(routes, rootRoute)
			}
		}
		si := newSite(name, cs.Hosts, routes)
		t, err := newTryFiles(cs, rootRoute)
		if err != nil {
			errs = append(errs, fmt.Errorf("site %s: try_files: %w", name, err))
		}
		si.try = t
		if t != nil && strings.HasSuffix(t.fallback, ".php") {
			s.log.Info("PHP front controller: "+t.fallback, "site", name, "root", cs.Root)
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
func (s *Server) sendfile(ctx context.Context, st, prev *state, cs *config.Site, cr *config.Route, app http.Handler) (http.Handler, error) {
	fr := &config.Route{Path: "/", Static: cr.SendfileRoot}
	fr.SetDefaults()
	files, err := s.handlerFor(ctx, st, prev, cs, fr)
	if err != nil {
		return nil, err
	}
	sh, ok := files.(*static.Handler)
	if !ok {
		return nil, fmt.Errorf("%s: not a directory gantry can serve", cr.SendfileRoot)
	}
	return xsendfile.New(app, cr.SendfileRoot, sh, s.log.With("component", "xsendfile", "route", cr.Path)), nil
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
	key := routeKey(cs, cr)
	if h, ok := st.handlers[key]; ok {
		return h, nil
	}
	if prev != nil {
		if h, ok := prev.handlers[key]; ok {
			if r, ok := h.(interface{ Reload(context.Context) error }); ok {
				if err := r.Reload(ctx); err != nil {
					return nil, fmt.Errorf("reload: %w", err)
				}
			}
			st.handlers[key] = h
			return h, nil
		}
	}
	log := s.log.With("component", cr.Kind(), "route", cr.Path)
	h, err := s.newHandler(ctx, cs, cr, log)
	if err != nil {
		if cr.Optional {
			log.Warn("route disabled: its handler could not start; answering 503 (the route is optional)", "err", err)
			return unavailable(err), nil
		}
		return nil, err
	}
	st.handlers[key] = h
	return h, nil
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
	for key, h := range st.handlers {
		if _, kept := next.handlerByKey(key); kept {
			continue
		}
		if sd, ok := h.(interface{ Shutdown(context.Context) error }); ok {
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
	err := s.reload(ctx, old)
	s.lastReload = ReloadResult{Time: time.Now(), OK: err == nil}
	if err != nil {
		s.lastReload.Error = err.Error()
		s.log.Error("reload failed; the previous configuration keeps serving", "err", err)
		return err
	}
	s.log.Info("configuration reloaded", "file", old.cfg.File)
	return nil
}

func (s *Server) reload(ctx context.Context, old *state) error {
	if old.cfg.File == "" {
		return errors.New("reload: gantry was started without a config file (-c FILE): nothing to re-read")
	}
	cfg, err := config.Load(old.cfg.File)
	if err != nil {
		return err
	}
	for _, w := range restartOnly(old.cfg, cfg) {
		s.log.Warn("reload: setting changed but takes effect only on restart", "setting", w)
	}
	st, err := s.build(ctx, cfg, old)
	if err != nil {
		return err
	}
	if cfg.Server.AccessLog != old.cfg.Server.AccessLog || cfg.Server.LogFormat != old.cfg.Server.LogFormat {
		al, err := accesslog.Open(cfg.Server.AccessLog, cfg.Server.LogFormat)
		if err != nil {
			st.shutdown(ctx, old)
			return err
		}
		prevLog := s.accessLog.Swap(al)
		defer prevLog.Close()
	}
	s.state.Store(st)
	if s.certs != nil {
		s.certs.Update(cfg)
	}
	// The old generation's own handlers finish their in-flight requests and stop.
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.D())
		defer cancel()
		if err := old.shutdown(sctx, st); err != nil {
			s.log.Warn("reload: stopping replaced handlers", "err", err)
		}
	}()
	return nil
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

func (st *state) handlerByKey(key string) (http.Handler, bool) {
	if st == nil {
		return nil, false
	}
	h, ok := st.handlers[key]
	return h, ok
}
