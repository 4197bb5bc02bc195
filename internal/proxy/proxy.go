// Package proxy is gantry's reverse proxy: an http.Handler that forwards a
// route's requests to one upstream HTTP server, on TCP or a unix socket.
//
// It is httputil.ReverseProxy underneath, with the choices a front server
// has to make spelled out: which X-Forwarded-* headers to trust, what to do
// with the path, which errors are 502 and which 504, and how upgraded
// (WebSocket) connections end when gantry shuts down.
package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"gantry/internal/abort"
	"gantry/internal/config"
	"gantry/internal/httpfield"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure one proxy route. Its keys are a proxy route's; the fields
// without one are set by code.
type Options struct {
	// Upstream is "http://127.0.0.1:3000", "http://host:port/base" or
	// "unix:/path/to.sock". With a path (even just "/") the route's prefix
	// is replaced by it; without one the request path passes through as is.
	Upstream string `toml:"proxy"`
	// Route is the route's path ("/", "/app/", "/x", "*.php").
	Route string `toml:"-"`
	// Timeout bounds the wait for the upstream's response headers once the
	// request is sent (default 60s); past it the client gets 504.
	Timeout config.Duration `toml:"timeout"`
	// DialTimeout bounds connecting to the upstream (default 5s).
	DialTimeout time.Duration `toml:"-"`
	// TrustedProxies lists the addresses or CIDRs of proxies in front of
	// gantry (a CDN, a load balancer). Only a peer in this list may supply
	// X-Forwarded-For (appended to), X-Forwarded-Proto, X-Forwarded-Host and
	// X-Real-IP; from anyone else they are dropped and set afresh.
	TrustedProxies []string `toml:"trusted_proxies"`
	// HostHeader, if set, replaces the Host header sent upstream (nginx's
	// "proxy_set_header Host"). By default the client's Host is passed on, as
	// Caddy does, so that apps build their own absolute URLs correctly.
	HostHeader string `toml:"-"`
}

const (
	defaultTimeout     = config.DefaultTimeout
	defaultDialTimeout = 5 * time.Second
)

// Handler proxies requests to one upstream.
type Handler struct {
	rp        *httputil.ReverseProxy
	transport *http.Transport
	log       *slog.Logger
	upstream  string // as configured, for log lines
	up        upstream
	route     string
	trusted   []netip.Prefix
	host      string

	mu       sync.Mutex
	upgraded map[*trackedConn]struct{}
	drained  chan struct{} // closed when upgraded becomes empty during Shutdown
}

// New builds a Handler. logger may be nil.
func New(opts Options, logger *slog.Logger) (*Handler, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	up, err := parseUpstream(opts.Upstream)
	if err != nil {
		return nil, err
	}
	if opts.Timeout < 0 || opts.DialTimeout < 0 {
		return nil, fmt.Errorf("proxy: upstream %q: negative timeout", opts.Upstream)
	}
	opts.defaults()
	if opts.DialTimeout == 0 {
		opts.DialTimeout = defaultDialTimeout
	}
	if strings.ContainsAny(opts.HostHeader, " \t\r\n/") {
		return nil, fmt.Errorf("proxy: host header %q is not a host name", opts.HostHeader)
	}
	trusted, err := parseTrusted(opts.TrustedProxies)
	if err != nil {
		return nil, err
	}

	dialer := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	dial := dialer.DialContext
	if up.socket != "" {
		sock := up.socket
		dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", sock)
		}
	}
	tr := &http.Transport{
		// Never http.ProxyFromEnvironment: a HTTP_PROXY in gantry's own
		// environment must not divert traffic meant for a local app.
		Proxy:                 nil,
		DialContext:           dial,
		TLSHandshakeTimeout:   opts.DialTimeout,
		ResponseHeaderTimeout: opts.Timeout.D(),
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          256,
		// The default of 2 would make every burst above 2 concurrent
		// requests open and close fresh upstream connections.
		MaxIdleConnsPerHost: 256,
		// Pass the client's Accept-Encoding through and the upstream's
		// encoding back, instead of decompressing in the middle.
		DisableCompression: true,
		TLSClientConfig:    &tls.Config{MinVersion: tls.VersionTLS12},
	}
	h := &Handler{
		transport: tr,
		log:       logger,
		upstream:  opts.Upstream,
		up:        up,
		route:     opts.Route,
		trusted:   trusted,
		host:      opts.HostHeader,
		upgraded:  make(map[*trackedConn]struct{}),
	}
	h.rp = &httputil.ReverseProxy{
		Rewrite:      h.rewrite,
		Transport:    tr,
		ErrorHandler: h.handleError,
		ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		// Text/event-stream and unknown-length responses are flushed at
		// once by ReverseProxy itself; fixed-length ones are flushed as they
		// are copied, so a slow upstream is never held back by buffering.
		FlushInterval: -1,
	}
	return h, nil
}

func parseTrusted(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("proxy: trusted proxy %q: want an IP address or CIDR", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// ServeHTTP forwards r to the upstream.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isUpgrade(r.Header) {
		w = &upgradeWriter{ResponseWriter: w, h: h}
	}
	defer func() {
		// ReverseProxy ends a response it cannot complete with this panic, having
		// logged the copy error: say whose fault it was.
		if v := recover(); v == http.ErrAbortHandler {
			if r.Context().Err() != nil {
				abort.Response(w, abort.Client)
			}
			abort.Response(w, abort.Backend)
		} else if v != nil {
			panic(v)
		}
	}()
	h.rp.ServeHTTP(w, r)
}

// rewrite runs after ReverseProxy has removed hop-by-hop headers (including
// any a client named in Connection) and the incoming Forwarded and
// X-Forwarded-* headers, so nothing set here can be stripped by a client's
// "Connection: X-Forwarded-For" (CVE-2021-33197).
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	out.URL.Scheme = h.up.scheme
	out.URL.Host = h.up.host
	if h.up.hasBase {
		escaped := mapPath(h.route, h.up.base, true, in.URL.EscapedPath())
		if p, err := url.PathUnescape(escaped); err == nil {
			out.URL.Path, out.URL.RawPath = p, escaped
		}
	}
	if h.up.rawQuery != "" {
		if out.URL.RawQuery == "" {
			out.URL.RawQuery = h.up.rawQuery
		} else {
			out.URL.RawQuery = h.up.rawQuery + "&" + out.URL.RawQuery
		}
	}
	if h.host != "" {
		out.Host = h.host
	}
	if out.Body != nil {
		out.Body = &clientBody{ReadCloser: out.Body}
	}
	// httpoxy: a "Proxy" request header means nothing to an HTTP server
	// and is read as HTTP_PROXY by CGI-style apps behind this one.
	out.Header.Del("Proxy")
	out.Header.Del("X-Real-Ip")
	dropUnplainNames(out.Header)
	// An h2c upgrade would turn the upstream connection into HTTP/2 that
	// gantry relays blind: a client could then send requests no route check
	// or header rule sees (h2c smuggling). Refused as nginx does; the
	// request goes on as plain HTTP/1.1.
	if httpfield.HasToken(out.Header.Get("Upgrade"), "h2c") {
		out.Header.Del("Upgrade")
		out.Header.Del("Connection")
	}
	out.Header.Del("Http2-Settings")

	peer, peerOK := peerAddr(in.RemoteAddr)
	trusted := peerOK && h.isTrusted(peer)
	if trusted {
		if prior := in.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			out.Header.Set("X-Forwarded-For", strings.Join(prior, ", ")+", "+peer.String())
		} else {
			out.Header.Set("X-Forwarded-For", peer.String())
		}
		copyOrSet(out.Header, in.Header, "X-Forwarded-Proto", scheme(in))
		copyOrSet(out.Header, in.Header, "X-Forwarded-Host", in.Host)
		copyOrSet(out.Header, in.Header, "X-Real-Ip", peer.String())
		return
	}
	if peerOK {
		out.Header.Set("X-Forwarded-For", peer.String())
		out.Header.Set("X-Real-Ip", peer.String())
	}
	out.Header.Set("X-Forwarded-Proto", scheme(in))
	out.Header.Set("X-Forwarded-Host", in.Host)
}

// dropUnplainNames removes the fields whose names are not letters, digits and
// "-": an app behind may map "X-Auth.User" or "X_Auth_User" onto the
// "X-Auth-User" a trusted proxy in front sets (see httpfield.PlainName).
func dropUnplainNames(h http.Header) {
	for name := range h {
		if !httpfield.PlainName(name) {
			delete(h, name)
		}
	}
}

func copyOrSet(out, in http.Header, name, fallback string) {
	if v := in.Get(name); v != "" {
		out.Set(name, v)
	} else {
		out.Set(name, fallback)
	}
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func peerAddr(remote string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

func (h *Handler) isTrusted(a netip.Addr) bool {
	for _, p := range h.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func isUpgrade(hd http.Header) bool {
	if hd.Get("Upgrade") == "" {
		return false
	}
	for _, v := range hd["Connection"] {
		if httpfield.HasToken(v, "upgrade") {
			return true
		}
	}
	return false
}

// handleError answers a request that got no usable response from the
// upstream: 504 when the upstream was too slow to connect or answer, 502 for
// everything else (refused, reset, a malformed response).
func (h *Handler) handleError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The client went away; nobody is left to answer (nginx logs 499).
		h.log.Debug("proxy: client closed request", "upstream", h.upstream,
			"method", r.Method, "path", r.URL.Path)
		// Writing nothing would let net/http answer an empty 200 to a client
		// that may still read; the connection closes instead, logged as 499.
		abort.Response(w, abort.Client)
	}
	status := http.StatusBadGateway
	var ne net.Error
	var tooBig *http.MaxBytesError
	if cb, ok := r.Body.(*clientBody); ok && cb.failed() != nil {
		// The request body, not the upstream, is what broke: a bad chunk,
		// a client that stopped sending, or the server's max_body limit.
		err = cb.failed()
		status = http.StatusBadRequest
		if errors.As(err, &tooBig) {
			status = http.StatusRequestEntityTooLarge
		}
		// The client's doing, at a rate of its choosing: not an error of ours.
		h.log.Info("proxy: request body refused", "status", status,
			"method", r.Method, "path", r.URL.Path, "err", err)
		h.answer(w, status)
		return
	} else if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		status = http.StatusGatewayTimeout
	}
	h.log.Error("proxy: upstream failed", "upstream", h.upstream, "status", status,
		"method", r.Method, "path", r.URL.Path, "err", err)
	h.answer(w, status)
}

// answer writes gantry's own error response for status.
func (h *Handler) answer(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintf(w, "%d %s\n", status, http.StatusText(status))
}

// clientBody remembers a failure reading the client's request body, which
// the transport reports to ReverseProxy as if the upstream had failed.
type clientBody struct {
	io.ReadCloser
	err atomic.Pointer[error]
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

func (b *clientBody) failed() error {
	if e := b.err.Load(); e != nil {
		return *e
	}
	return nil
}

// Shutdown closes idle upstream connections and waits for upgraded
// (WebSocket) connections to end, which http.Server.Shutdown does not track;
// when ctx ends first it closes them and returns ctx's error.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.transport.CloseIdleConnections()
	h.mu.Lock()
	if len(h.upgraded) == 0 {
		h.mu.Unlock()
		return nil
	}
	if h.drained == nil {
		h.drained = make(chan struct{})
	}
	drained := h.drained
	h.mu.Unlock()

	select {
	case <-drained:
		return nil
	case <-ctx.Done():
	}
	h.mu.Lock()
	conns := make([]*trackedConn, 0, len(h.upgraded))
	for c := range h.upgraded {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	h.log.Warn("proxy: closed upgraded connections at shutdown", "upstream", h.upstream, "count", len(conns))
	return fmt.Errorf("proxy: upstream %s: shutdown: %w", h.upstream, ctx.Err())
}

func (h *Handler) forget(c *trackedConn) {
	h.mu.Lock()
	delete(h.upgraded, c)
	if len(h.upgraded) == 0 && h.drained != nil {
		close(h.drained)
		h.drained = nil
	}
	h.mu.Unlock()
}

// upgradeWriter lets the Handler see the client connection that
// ReverseProxy hijacks for a protocol switch.
type upgradeWriter struct {
	http.ResponseWriter
	h *Handler
}

func (u *upgradeWriter) Unwrap() http.ResponseWriter { return u.ResponseWriter }

func (u *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(u.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	tc := &trackedConn{Conn: conn, h: u.h}
	// ReverseProxy copies from the conn, not from brw: bytes a client sent
	// right behind its upgrade request would be lost without this.
	if brw.Reader.Buffered() > 0 {
		tc.pending = brw.Reader
	}
	u.h.mu.Lock()
	u.h.upgraded[tc] = struct{}{}
	u.h.mu.Unlock()
	return tc, brw, nil
}

type trackedConn struct {
	net.Conn
	h       *Handler
	once    sync.Once
	pending *bufio.Reader // client bytes read ahead by the server, or nil
}

func (c *trackedConn) Read(p []byte) (int, error) {
	if c.pending != nil {
		n := c.pending.Buffered()
		if n > len(p) {
			n = len(p)
		}
		n, err := c.pending.Read(p[:n])
		if c.pending.Buffered() == 0 {
			c.pending = nil
		}
		return n, err
	}
	return c.Conn.Read(p)
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.h.forget(c) })
	return err
}
