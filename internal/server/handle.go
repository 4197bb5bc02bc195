package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// ServeHTTP picks the site and route for r and runs the route's handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := s.state.Load()
	rw := &responseWriter{ResponseWriter: w}
	w.Header()["Server"] = serverHeader
	site, _ := st.hosts.lookup(r.Host)
	var rt *route
	switch {
	case r.Method == http.MethodConnect:
		rw.Header().Set("Connection", "close")
		http.Error(rw, "405 method not allowed: this is not a forward proxy", http.StatusMethodNotAllowed)
	case r.URL.Path == "*" && r.Method == http.MethodOptions:
		rw.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
		rw.WriteHeader(http.StatusOK)
	case !strings.HasPrefix(r.URL.Path, "/") || strings.IndexByte(r.URL.Path, 0) >= 0:
		http.Error(rw, "400 bad request: malformed path", http.StatusBadRequest)
	case site == nil:
		http.Error(rw, "404 not found: no site here answers to this host name", http.StatusNotFound)
	default:
		rt = site.match(r.URL.Path)
		if rt == nil {
			http.NotFound(rw, r)
			break
		}
		maxBody := int64(st.cfg.Server.MaxBody)
		if r.ContentLength > maxBody {
			s.bodyFailed(rw, r, maxBody, &http.MaxBytesError{Limit: maxBody})
			break
		}
		if rt.body.spools(r) {
			b, err := st.spool.Request(rw, r, maxBody)
			if err != nil {
				s.bodyFailed(rw, r, maxBody, err)
				break
			}
			defer b.Close()
		} else if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(rw, r.Body, maxBody)
		}
		s.run(rt.handler, rw, r)
	}
	s.record(start, r, rw.status, rw.bytes, site, rt)
}

var serverHeader = []string{"gantry"}

// run calls h, turning a handler panic into a 500 and a log line instead of a
// dropped connection.
func (s *Server) run(h http.Handler, w *responseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panic", "uri", r.RequestURI, "panic", v)
			if w.status == 0 {
				http.Error(w, "500 internal server error", http.StatusInternalServerError)
			} else {
				panic(http.ErrAbortHandler)
			}
		}
	}()
	h.ServeHTTP(w, r)
}

// responseWriter records the status and size of a response. It keeps the optional
// interfaces of the writer it wraps: ReadFrom (so files go out with sendfile), Flush
// (streaming) and Hijack (WebSocket).
type responseWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 || (w.status >= 100 && w.status < 200) {
		w.status = code
		w.oneServer()
	}
	w.ResponseWriter.WriteHeader(code)
}

// oneServer keeps gantry's Server header only: a proxied upstream's own is hidden,
// as nginx's proxy_hide_header does by default.
func (w *responseWriter) oneServer() {
	h := w.ResponseWriter.Header()
	if v := h["Server"]; len(v) > 1 {
		h["Server"] = v[:1]
	}
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
		w.oneServer()
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
		w.oneServer()
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(w.ResponseWriter, r)
	}
	w.bytes += n
	return n, err
}

func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
		w.oneServer()
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("server: connection cannot be hijacked")
	}
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return h.Hijack()
}

// Unwrap lets http.ResponseController reach the connection's own writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// redirect answers every request with a redirect to target, where "{uri}" stands for
// the request's path and query.
func redirect(target string, status int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.ReplaceAll(target, "{uri}", r.URL.RequestURI()), status)
	})
}
