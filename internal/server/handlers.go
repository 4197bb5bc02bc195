package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"gantry/internal/cgi"
	"gantry/internal/config"
	"gantry/internal/fastcgi"
	"gantry/internal/fsroot"
	"gantry/internal/proxy"
	"gantry/internal/static"
	"gantry/internal/wsgi"
)

// newHandler builds the http.Handler for one route from its config.
func (s *Server) newHandler(ctx context.Context, cs *config.Site, cr *config.Route, log *slog.Logger) (http.Handler, error) {
	software := "gantry/" + s.version
	root := cs.Root
	symlinks, err := fsroot.ParseMode(cs.Symlinks)
	if err != nil {
		return nil, err
	}
	switch cr.Kind() {
	case config.KindStatic:
		return static.New(static.Options{Root: cr.Static, Route: cr.Path, Index: cr.Index, AllowDotfiles: cr.AllowDotfiles, Symlinks: symlinks}, log)
	case config.KindCGI:
		return cgi.New(cgi.Options{
			Path: cr.CGI, Route: cr.Path, DocumentRoot: root, Timeout: cr.Timeout.D(), Env: cr.Env,
			PassAuthorization: cr.PassAuthorization, MaxProcesses: cr.MaxProcesses, User: cr.User,
			ServerSoftware: software, Redirect: s.localRedirect,
		}, log)
	case config.KindFastCGI:
		if cr.Root != "" {
			root = cr.Root
		}
		return fastcgi.New(fastcgi.Options{
			Address: cr.FastCGI, Command: cr.FastCGICmd, Processes: cr.Processes, MaxRequests: cr.MaxRequests,
			Env: cr.Env, User: cr.User, Route: cr.Path, Root: root, Index: cr.Index, Split: cr.Split,
			Timeout: cr.Timeout.D(), MaxConns: cr.MaxConns, ServerSoftware: software, Symlinks: symlinks,
		}, log)
	case config.KindWSGI:
		if cr.Mode == "embedded" {
			return nil, fmt.Errorf("wsgi: mode = \"embedded\" needs a gantry built with -tags python (cgo and libpython); use the default daemon mode")
		}
		return wsgi.New(ctx, wsgi.Options{
			App: cr.WSGI, Python: cr.Python, Chdir: cr.Chdir, Processes: cr.Processes, Threads: cr.Threads,
			MaxRequests: uint64(cr.MaxRequests), Timeout: cr.Timeout.D(), Env: cr.Env, AutoReload: cr.Reload == "auto",
			Route: cr.Path, DocumentRoot: root, ServerSoftware: software,
		}, log)
	case config.KindProxy:
		return proxy.New(proxy.Options{Upstream: cr.Proxy, Route: cr.Path, Timeout: cr.Timeout.D(), TrustedProxies: cr.TrustedProxies}, log)
	case config.KindRedirect:
		return redirect(cr.Redirect, cr.Status), nil
	}
	return nil, fmt.Errorf("%s routes are not available in this build", cr.Kind())
}

// localRedirect serves r (whose URL a CGI script's local Location rewrote) as if it
// had arrived so, through whichever route now matches it (RFC 3875 §6.2.2).
func (s *Server) localRedirect(w http.ResponseWriter, r *http.Request) {
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
