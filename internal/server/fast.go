package server

import (
	"net/http"
	"time"

	"gantry/internal/accesslog"
	"gantry/internal/http1"
	"gantry/internal/static"
)

// fastHandler is the server's entry for the HTTP/1.1 fast path (internal/http1).
type fastHandler struct{ s *Server }

// ServeFast answers r when ServeHTTP would pass it to a static route that can
// answer from its cache; it declines (writing nothing) otherwise, and the
// connection goes to net/http. The state is loaded per request, so a reload
// applies to the next request on a fast connection.
func (f fastHandler) ServeFast(w *http1.ResponseWriter, r *http.Request) bool {
	s := f.s
	st := s.state.Load()
	if !st.cfg.Server.Fast() {
		return false
	}
	site, _ := st.hosts.lookup(r.Host)
	if site == nil {
		return false
	}
	rt := site.match(r.URL.Path)
	if rt == nil {
		return false
	}
	sh, ok := rt.handler.(*static.Handler)
	if !ok {
		return false
	}
	start := time.Now()
	w.Header()["Server"] = serverHeader
	if !sh.ServeCached(w, r) {
		return false
	}
	s.requests.Add(1)
	s.fastHits.Add(1)
	al := s.accessLog.Load()
	if al == nil && len(s.observers) == 0 {
		return true
	}
	// rec.Request is the connection's reused request: valid only during the
	// observers' calls, as the Observer contract says.
	rec := accesslog.Record{
		Time: start, Duration: time.Since(start), RemoteAddr: r.RemoteAddr, Method: r.Method,
		URI: r.RequestURI, Proto: r.Proto, Host: r.Host, Status: w.Status(), Bytes: w.Written(),
		Referer: r.Referer(), UserAgent: r.UserAgent(), Request: r, Site: site.name, Route: rt.path,
	}
	if al != nil {
		al.Log(&rec)
	}
	for _, o := range s.observers {
		o(&rec)
	}
	return true
}
