package server

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gantry/internal/certs"
	"gantry/internal/config"
	"gantry/internal/h2"
	"gantry/internal/http1"
	"gantry/internal/sendtimeout"
	"gantry/internal/urlpath"
)

// newCerts makes the certificate manager when [server] tls_listen is set. It
// runs after BeforeBuild, so that storage belongs to the user gantry runs as.
func (s *Server) newCerts(cfg *config.Config) error {
	if len(s.tlsListeners) == 0 {
		return nil
	}
	opts := certs.Options{Logger: s.log.With("component", "tls"), TLSAddr: s.tlsListeners[0].Addr().String()}
	if len(s.listeners) > 0 {
		opts.HTTPAddr = s.listeners[0].Addr().String()
	}
	if s.certOpts != nil {
		s.certOpts(&opts)
	}
	m, err := certs.New(cfg, opts)
	if err != nil {
		return err
	}
	s.certs = m
	return nil
}

// Certs is the certificate manager, nil when gantry serves no HTTPS.
func (s *Server) Certs() *certs.Manager { return s.certs }

// TLSAddrs returns the bound HTTPS listener addresses.
func (s *Server) TLSAddrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, len(s.tlsListeners))
	for i, l := range s.tlsListeners {
		out[i] = l.Addr()
	}
	return out
}

// serveTLS serves the HTTPS listeners: HTTP/2 and HTTP/1.1 by ALPN. With the
// fast path, gantry's HTTP/1.1 loop (internal/http1) does the handshakes and
// serves HTTP/1.1 itself, handing h2 and whatever it declines to net/http;
// without, net/http serves everything. Called with s.mu held.
func (s *Server) serveTLS(cfg config.Server) {
	if s.certs == nil {
		return
	}
	// the stored certificates are in hand before the first handshake
	s.certs.Start()
	tc := s.newTLSConfigs()
	s.serveQUIC(cfg, tc)
	for _, ln := range s.tlsListeners {
		hs := &http.Server{
			Handler:           s.altSvc(ln.Addr(), tlsHandler{s}),
			TLSConfig:         tc.tcp,
			ReadHeaderTimeout: cfg.ReadHeaderTimeout.D(),
			ReadTimeout:       cfg.ReadTimeout.D(),
			IdleTimeout:       cfg.IdleTimeout.D(),
			MaxHeaderBytes:    int(cfg.MaxHeader),
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		wrapped := sendtimeout.Listener(ln, cfg.WriteTimeout.D())
		serve := func() error { return hs.ServeTLS(wrapped, "", "") }
		if cfg.Fast() {
			fh := tlsFastHandler{s, s.altSvcHeader(ln.Addr())}
			fs := &http1.Server{Handler: fh, Fallback: hs,
				ReadHeaderTimeout: hs.ReadHeaderTimeout, IdleTimeout: hs.IdleTimeout, WriteTimeout: cfg.WriteTimeout.D(),
				MaxHeaderBytes: hs.MaxHeaderBytes, Logger: s.log, TLSConfig: tc.tcp, HandshakeDone: tc.handshakeDone,
				H2: &h2.Server{Handler: hs.Handler, Inline: fh.serveInline, Logger: s.log, MaxHeaderBytes: hs.MaxHeaderBytes,
					IdleTimeout: hs.IdleTimeout, ReadTimeout: hs.ReadTimeout, WriteTimeout: cfg.WriteTimeout.D(),
					PrefaceTimeout: hs.ReadHeaderTimeout}}
			s.fast = append(s.fast, fs)
			serve = func() error { return fs.Serve(wrapped) }
		} else {
			hs.ConnState = tc.connState
			s.tlsServers = append(s.tlsServers, hs)
		}
		go func(ln net.Listener) {
			if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("TLS listener stopped", "addr", ln.Addr().String(), "err", err)
			}
		}(ln)
	}
}

// tlsHandler serves requests that came over TLS.
type tlsHandler struct{ s *Server }

func (h tlsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if hsts := h.s.state.Load().cfg.TLS.HSTS; hsts != "" {
		w.Header().Set("Strict-Transport-Security", hsts)
	}
	h.s.ServeHTTP(w, r)
}

// tlsFastHandler is the fast path of a TLS listener: its responses carry what
// tlsHandler and altSvc add on the listener's net/http server.
type tlsFastHandler struct {
	s      *Server
	altSvc []string // nil without HTTP/3 on the listener's port
}

func (h tlsFastHandler) ServeFast(w *http1.ResponseWriter, r *http.Request) bool {
	if hsts := h.s.state.Load().cfg.TLS.HSTS; hsts != "" {
		w.Header()["Strict-Transport-Security"] = []string{hsts}
	}
	if h.altSvc != nil {
		w.Header()["Alt-Svc"] = h.altSvc
	}
	return fastHandler{h.s}.ServeFast(w, r)
}

// plainHandler serves requests on the plain listeners: ACME HTTP-01 challenges
// and redirects to https come before the sites.
type plainHandler struct{ s *Server }

func (h plainHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.s
	if s.certs == nil {
		s.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	if strings.HasPrefix(r.URL.Path, acmeChallengePath) && s.certs.HandleHTTPChallenge(w, r) {
		s.record(start, r, outcome{status: http.StatusOK}, nil, nil)
		return
	}
	if !s.redirects(r) {
		s.ServeHTTP(w, r)
		return
	}
	w.Header()["Server"] = serverHeader
	w.Header().Set("Location", s.httpsURL(r))
	w.WriteHeader(http.StatusPermanentRedirect)
	s.record(start, r, outcome{status: http.StatusPermanentRedirect}, nil, nil)
}

// toHTTPS reports whether plainHandler may answer a plain-HTTP request itself
// (an ACME challenge, or a redirect): the fast path leaves those to it.
func (s *Server) toHTTPS(r *http.Request) bool {
	return s.certs != nil && (strings.HasPrefix(r.URL.Path, acmeChallengePath) || s.redirects(r))
}

// redirects reports whether a plain-HTTP request goes to https: [tls] redirect
// is on and the host, one a site names, has a certificate now (while one is
// being obtained, the site keeps answering over HTTP).
func (s *Server) redirects(r *http.Request) bool {
	if !s.state.Load().cfg.TLS.Redirects() {
		return false
	}
	host := requestHost(r.Host)
	return host != "" && s.certs.Named(host) && s.certs.HasCert(host)
}

const acmeChallengePath = "/.well-known/acme-challenge/"

// httpsURL is r's URL over https, on the first TLS listener's port.
func (s *Server) httpsURL(r *http.Request) string {
	host := requestHost(r.Host)
	port := ""
	if a, ok := s.tlsListeners[0].Addr().(*net.TCPAddr); ok && a.Port != 443 {
		port = strconv.Itoa(a.Port)
	}
	switch {
	case port != "":
		host = net.JoinHostPort(host, port)
	case net.ParseIP(host) != nil && net.ParseIP(host).To4() == nil:
		host = "[" + host + "]"
	}
	return "https://" + host + r.URL.RequestURI()
}

// requestHost is the host of a Host header, without port or IPv6 brackets.
func requestHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// serveInline answers an HTTP/2 request on its connection's reader goroutine
// when the static cache holds the answer in memory (the h2 writer says so to
// the cache), as ServeHTTP's own HTTP/2 shortcut would, without a goroutine;
// it declines (writing nothing) whatever else ServeHTTP has to decide.
func (h tlsFastHandler) serveInline(w http.ResponseWriter, r *http.Request) bool {
	s := h.s
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	st := s.useState()
	defer st.release()
	if !st.cfg.Server.Fast() || s.reqGate != nil && s.reqGate.Forbidden(r.RemoteAddr, r.Header["X-Forwarded-For"]) {
		return false
	}
	// A path that is not already clean, or is escaped, is ServeHTTP's to
	// normalise or refuse.
	if r.URL.RawPath != "" || strings.IndexByte(r.RequestURI, '%') >= 0 {
		return false
	}
	if clean, err := urlpath.Clean(r.URL.Path); err != nil || clean != r.URL.Path {
		return false
	}
	site, _ := st.hosts.lookup(r.Host)
	if site == nil {
		return false
	}
	rt := site.match(r.URL.Path)
	if rt == nil || rt.cached == nil {
		return false
	}
	start := time.Now()
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	hdr := w.Header()
	hdr["Server"] = serverHeader
	if hsts := st.cfg.TLS.HSTS; hsts != "" {
		hdr["Strict-Transport-Security"] = []string{hsts}
	}
	if h.altSvc != nil {
		hdr["Alt-Svc"] = h.altSvc
	}
	rw := &responseWriter{ResponseWriter: w}
	if !rt.cached.ServeCached(rw, r) {
		clear(hdr)
		return false
	}
	s.fastHits.Add(1)
	s.record(start, r, rw.outcome, site, rt)
	return true
}
