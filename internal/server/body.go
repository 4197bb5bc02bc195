package server

import (
	"net/http"
	"time"

	"gantry/internal/config"
	"gantry/internal/spool"
)

// bodyMode is what ServeHTTP does with a request body before the route's handler runs.
type bodyMode uint8

const (
	// bodyStream hands the body on as it arrives (static, proxy, redirect routes).
	bodyStream bodyMode = iota
	// bodySpool reads the body in full first, so that a slow client never holds a
	// gateway's worker and the gateway knows the length.
	bodySpool
	// bodySpoolUnsized reads first only a body of unknown length: a CGI or FastCGI
	// route with request_buffering = false still needs a CONTENT_LENGTH, as
	// nginx's fastcgi_request_buffering off does for chunked bodies.
	bodySpoolUnsized
)

func bodyModeFor(cr *config.Route) bodyMode {
	bo, ok := cr.Handler.(bodyOptions)
	switch {
	case !ok:
		return bodyStream
	case bo.Buffered():
		return bodySpool
	}
	if u, ok := cr.Handler.(unsizedBodyTaker); ok && u.TakesUnsizedBody() {
		return bodyStream
	}
	return bodySpoolUnsized
}

func (m bodyMode) spools(r *http.Request) bool {
	return m == bodySpool || m == bodySpoolUnsized && r.ContentLength < 0
}

// bodyFirst is the innermost part of a route's handler: it caps the request body
// at [server] max_body and spools it when the route's mode says so, then runs
// next (the route's own handler). The route's middleware runs before it, so that
// a request that auth or a rate limit refuses is answered without its body being
// read, as nginx's access phase runs before a content handler reads the body.
func (s *Server) bodyFirst(st *state, mode bodyMode, next http.Handler) http.Handler {
	maxBody := int64(st.cfg.Server.MaxBody)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBody {
			s.bodyFailed(w, r, maxBody, &http.MaxBytesError{Limit: maxBody})
			return
		}
		if mode.spools(r) {
			b, err := st.spool.Request(w, r, maxBody)
			if err != nil {
				s.bodyFailed(w, r, maxBody, err)
				return
			}
			defer b.Close()
		} else if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		next.ServeHTTP(w, r)
	})
	if c, ok := next.(CachedServer); ok {
		// The fast path's requests have no body: its cached answers need no cap,
		// and the middleware around keeps them (wrap).
		return cachedBodyFirst{h, c}
	}
	return h
}

// cachedBodyFirst is bodyFirst around a handler that answers from a cache.
type cachedBodyFirst struct {
	http.Handler
	CachedServer
}

// bodyFailed answers a request whose body could not be spooled.
func (s *Server) bodyFailed(w http.ResponseWriter, r *http.Request, limit int64, err error) {
	status := spool.Status(err)
	switch status {
	case http.StatusRequestEntityTooLarge:
		s.log.Warn("request body too large; set [server] max_body to accept it", "uri", r.RequestURI, "max_body", limit)
	case http.StatusServiceUnavailable:
		s.log.Warn("request body refused: bodies spooled at once are at [server] body_temp_max (or this client's quarter of it)",
			"uri", r.RequestURI, "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", "5")
	case http.StatusInternalServerError:
		s.log.Error("cannot spool request body; check [server] body_temp", "uri", r.RequestURI, "err", err)
	default:
		s.log.Info("reading request body", "uri", r.RequestURI, "remote", r.RemoteAddr, "err", err)
	}
	if status == http.StatusRequestEntityTooLarge || status == http.StatusServiceUnavailable {
		// The rest of the body is never read, not even the 256KB net/http would
		// drain to keep the connection: it closes once the answer is out.
		w.Header().Set("Connection", "close")
		http.NewResponseController(w).SetReadDeadline(time.Now())
	}
	http.Error(w, http.StatusText(status), status)
}
