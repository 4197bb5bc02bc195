package server

import (
	"net/http"
	"time"

	"gantry/internal/abort"
	"gantry/internal/accesslog"
	"gantry/internal/http1"
	"gantry/internal/urlpath"
)

// fastHandler is the server's entry for the HTTP/1.1 fast path (internal/http1).
type fastHandler struct{ s *Server }

// ServeFast answers r when ServeHTTP would pass it to a static, FastCGI or WSGI
// route (their bodiless GET and HEAD requests need nothing of net/http), a cached
// static file without even the route's wrapper; it declines (writing nothing)
// otherwise, and the connection goes to net/http. The state is loaded per
// request, so a reload applies to the next request on a fast connection.
func (f fastHandler) ServeFast(w *http1.ResponseWriter, r *http.Request) bool {
	s := f.s
	st := s.useState()
	defer st.release()
	if !st.cfg.Server.Fast() || r.TLS == nil && s.toHTTPS(r) {
		return false
	}
	if s.reqGate != nil && s.reqGate.Forbidden(r.RemoteAddr, r.Header["X-Forwarded-For"]) {
		start := time.Now()
		w.Header()["Server"] = serverHeader
		writeForbidden(w)
		s.record(start, r, outcome{status: w.Status(), bytes: w.Written()}, nil, nil)
		return true
	}
	site, _ := st.hosts.lookup(r.Host)
	if site == nil {
		return false
	}
	// http1 takes no "%", "/." or "//", so its paths are already clean; one
	// that is not goes to ServeHTTP, which normalises or refuses it.
	if clean, err := urlpath.Clean(r.URL.Path); err != nil || clean != r.URL.Path {
		return false
	}
	rt := site.match(r.URL.Path)
	if rt == nil {
		return false
	}
	start := time.Now()
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	w.Header()["Server"] = serverHeader
	var out outcome
	serve := func(rt *route, r *http.Request) {
		rw := &responseWriter{ResponseWriter: w}
		if rt.cached == nil {
			// A gateway waits on an application: the request's context must end
			// when the client leaves, as net/http's does.
			r = w.WatchClient(r)
		}
		s.run(rt.handler, rw, r, rt)
		out = rw.outcome
	}
	switch {
	case rt.cached != nil:
		if rt.cached.ServeCached(w, r) {
			out.status, out.bytes = w.Status(), w.Written()
			break
		}
		// A cache miss, a Range or a conditional request, or a PHP front
		// controller's pretty URL: answered here like any other request.
		nrt, nr, code := st.tryRewrite(site, rt, r)
		if code != 0 || nrt == nil || nrt.fast == nil {
			return false
		}
		serve(nrt, nr)
		rt = nrt
	case rt.fast != nil:
		serve(rt, r)
	default:
		return false
	}
	s.fastHits.Add(1)
	s.record(start, r, out, site, rt)
	if out.aborted != "" {
		panic(http.ErrAbortHandler) // the connection closes, as in ServeHTTP
	}
	return true
}

// statusClientClosed is logged for a client that left before any response, as
// nginx logs it.
const statusClientClosed = 499

// record counts a request and hands it to the access log and the observers.
func (s *Server) record(start time.Time, r *http.Request, out outcome, site *site, rt *route) {
	status, aborted := out.status, out.aborted
	s.requests.Add(1)
	al := s.accessLog.Load()
	if al == nil && len(s.observers) == 0 {
		return
	}
	switch {
	case status == 0 && aborted == abort.Client:
		status = statusClientClosed
	case status == 0:
		status = http.StatusOK
	}
	// rec.Request may be a fast connection's reused request: valid only during
	// the observers' calls, as the Observer contract says.
	rec := accesslog.Record{
		Time: start, Duration: time.Since(start), RemoteAddr: r.RemoteAddr, Method: r.Method,
		URI: r.RequestURI, Proto: r.Proto, Host: r.Host, Status: status, Bytes: out.bytes, BodyBytes: out.bodyBytes, User: out.user,
		Referer: r.Referer(), UserAgent: r.UserAgent(), Aborted: string(aborted), Request: r,
	}
	if site != nil {
		rec.Site = site.name
	}
	if rt != nil {
		rec.Route = rt.path
	}
	if al != nil {
		al.Log(&rec)
	}
	for _, o := range s.observers {
		o(&rec)
	}
}
