package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"gantry/internal/abort"
	"gantry/internal/http1"
	"gantry/internal/urlpath"
)

// ServeHTTP picks the site and route for r and runs the route's handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	if ref, ok := http1.Refused(r); ok {
		s.refuse(start, w, r, ref)
		return
	}
	st := s.useState()
	defer st.release()
	rw := &responseWriter{ResponseWriter: w}
	if r.Body != nil && r.Body != http.NoBody {
		rw.body.ReadCloser = r.Body
		r.Body = &rw.body
		rw.req = r
		defer rw.giveBackBody()
	}
	w.Header()["Server"] = serverHeader
	site, _ := st.hosts.lookup(r.Host)
	var rt *route
	switch {
	case s.forbidden(rw, r):
	case r.Method == http.MethodConnect:
		rw.Header().Set("Connection", "close")
		http.Error(rw, "405 method not allowed: this is not a forward proxy", http.StatusMethodNotAllowed)
	case r.URL.Path == "*" && r.Method == http.MethodOptions:
		rw.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
		rw.WriteHeader(http.StatusOK)
	case !s.cleanPath(rw, r):
	case site == nil:
		http.Error(rw, "404 not found: no site here answers to this host name", http.StatusNotFound)
	default:
		rt = site.match(r.URL.Path)
		// HTTP/2 and HTTP/3 requests get the static cache's answer as the
		// HTTP/1.1 fast path does, without the handler chain's per-request cost.
		if r.ProtoMajor >= 2 && (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
			rt != nil && rt.cached != nil && st.cfg.Server.Fast() && rt.cached.ServeCached(rw, r) {
			s.fastHits.Add(1)
			break
		}
		var status int
		rt, r, status = st.tryRewrite(site, rt, r)
		if rt == nil {
			if status == 0 {
				status = http.StatusNotFound
			}
			http.Error(rw, http.StatusText(status), status)
			break
		}
		s.run(rt.handler, rw, r, rt)
	}
	rw.bodyBytes = rw.body.n.Load()
	s.record(start, r, rw.outcome, site, rt)
	if rw.aborted != "" {
		// Logged first: the panic makes net/http close the connection (or reset
		// the HTTP/2 stream), so a cut response never looks complete.
		panic(http.ErrAbortHandler)
	}
}

var serverHeader = []string{"gantry"}

// forbidden answers 403 a request a trusted proxy forwards for a banned client
// (RequestGate), leaving the proxy's connection open, and reports whether it
// did.
func (s *Server) forbidden(w http.ResponseWriter, r *http.Request) bool {
	if s.reqGate == nil || !s.reqGate.Forbidden(r.RemoteAddr, r.Header["X-Forwarded-For"]) {
		return false
	}
	writeForbidden(w)
	return true
}

func writeForbidden(w http.ResponseWriter) {
	http.Error(w, "403 forbidden: the client this request is forwarded for is banned", http.StatusForbidden)
}

// cleanPath normalises r's path (urlpath.Clean) so that route matching, every
// handler and every backend see the same one, or answers 400 and reports false.
// r.RequestURI stays the request target as sent (nginx's $request_uri).
func (s *Server) cleanPath(w http.ResponseWriter, r *http.Request) bool {
	escaped := r.URL.EscapedPath()
	if escaped == "" && r.URL.Host != "" {
		// An absolute-form target with no path ("GET http://a HTTP/1.1") names "/"
		// (RFC 9110 §4.2.3).
		escaped = "/"
		u := *r.URL
		u.Path = "/"
		r.URL = &u
	}
	clean, err := urlpath.Clean(escaped)
	if err == nil && clean != escaped {
		u := *r.URL
		u.Path, err = url.PathUnescape(clean)
		u.RawPath = clean
		r.URL = &u
	}
	if err == nil && strings.IndexByte(r.URL.Path, 0) >= 0 {
		err = errors.New("path has a NUL byte")
	}
	if err != nil {
		s.log.Info("request refused: malformed path", "uri", r.RequestURI, "remote", r.RemoteAddr, "err", err)
		http.Error(w, "400 bad request: malformed path: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// run calls h, turning a handler panic into a 500 and a log line instead of a
// dropped connection. A response that was cut short after its header went out
// (the handler aborted it, or it is shorter than its Content-Length) ends with
// w.aborted set: the caller logs the request, then closes the connection.
func (s *Server) run(h http.Handler, w *responseWriter, r *http.Request, rt *route) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v != http.ErrAbortHandler {
			s.log.Error("handler panic", "uri", r.RequestURI, "panic", v)
			if w.status == 0 {
				http.Error(w, "500 internal server error", http.StatusInternalServerError)
				return
			}
			w.SetAborted(abort.Internal)
		}
		s.checkLength(w, r, rt)
		if w.aborted == "" {
			// A handler that aborted without saying why (httputil.ReverseProxy does).
			if r.Context().Err() != nil || w.writeErr {
				w.aborted = abort.Client
			} else {
				w.aborted = abort.Backend
			}
		}
	}()
	h.ServeHTTP(w, r)
	s.checkLength(w, r, rt)
	if w.aborted == "" && w.writeErr {
		w.aborted = abort.Client
	}
}

// checkLength finds a response shorter than the Content-Length its backend
// declared. Unless the client went away first, the backend is at fault: the error
// log names the route and the byte counts, and the response counts as aborted (net/http
// and the fast path would close the connection, but say nothing).
func (s *Server) checkLength(w *responseWriter, r *http.Request, rt *route) {
	want, ok := w.declaredLength(r)
	if !ok || w.bytes >= want {
		return
	}
	if w.aborted == abort.Client || r.Context().Err() != nil || w.writeErr {
		w.SetAborted(abort.Client)
		return
	}
	s.log.Error("backend response shorter than its Content-Length; connection closed",
		"route", rt.path, "uri", r.RequestURI, "declared", want, "sent", w.bytes)
	if w.aborted == "" {
		http.NewResponseController(w).Flush()
	}
	w.SetAborted(abort.Backend)
}

// responseWriter records the status and size of a response. It keeps the optional
// interfaces of the writer it wraps: ReadFrom (so files go out with sendfile), Flush
// (streaming) and Hijack (WebSocket).
type responseWriter struct {
	http.ResponseWriter
	outcome
	writeErr bool        // a write to the client failed
	body     requestBody // the request's body, counted
	// req is net/http's own request while its Body is the counting one.
	req *http.Request
}

// giveBackBody puts net/http's own body back in its request before the
// response header goes out: net/http decides then, by the body's type, whether
// an unread body is small enough to drain or is left unread and the connection
// closed; a body it does not know it would try to drain, waiting for a client
// that may never send it. Readers the handler holds keep counting. A Body
// that a handler has replaced in turn (max_body's cap, a spooled copy) stays.
func (w *responseWriter) giveBackBody() {
	if w.req != nil {
		if w.req.Body == &w.body {
			w.req.Body = w.body.ReadCloser
		}
		w.req = nil
	}
}

// requestBody counts a request body's bytes as the handler reads them, so that
// bytes in are what arrived, not what a Content-Length claimed. Atomic: a
// proxy's transport may still be reading it in its own goroutine when the
// request is logged.
type requestBody struct {
	io.ReadCloser
	n atomic.Int64
}

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// outcome is what the access log says of a response.
type outcome struct {
	status int
	bytes  int64
	// bodyBytes is the request body bytes the handler read.
	bodyBytes int64
	aborted   abort.Reason // why the response was cut short; "" when it was not
	user      string       // who the request was authenticated as (accesslog.SetUser)
}

// SetUser records the request's authenticated user for its log line.
func (w *responseWriter) SetUser(name string) { w.user = name }

// SetAborted records why the response was cut short (abort.Mark); the first
// reason wins.
func (w *responseWriter) SetAborted(why abort.Reason) {
	if w.aborted == "" {
		w.aborted = why
	}
}

// declaredLength returns the Content-Length the handler declared for a response
// that has a body.
func (w *responseWriter) declaredLength(r *http.Request) (int64, bool) {
	if w.status < 200 || w.status == http.StatusNoContent || w.status == http.StatusNotModified ||
		r.Method == http.MethodHead {
		return 0, false
	}
	v := w.ResponseWriter.Header()["Content-Length"]
	if len(v) != 1 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	return n, err == nil && n >= 0
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 || (w.status >= 100 && w.status < 200) {
		w.status = code
		w.oneServer()
		w.giveBackBody()
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
		w.giveBackBody()
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	if err != nil && err != http.ErrBodyNotAllowed {
		w.writeErr = true
	}
	return n, err
}

func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
		w.oneServer()
		w.giveBackBody()
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(w.ResponseWriter, r)
	}
	w.bytes += n
	if err != nil && err != http.ErrBodyNotAllowed {
		// Maybe the source's error, not the client's: the caller knows, and says so
		// with abort.Mark before this guess is used.
		w.writeErr = true
	}
	return n, err
}

func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
		w.oneServer()
		w.giveBackBody()
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
