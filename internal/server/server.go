// Package server runs gantry's HTTP listeners: it picks the site by Host and the
// route by path, hands the request to the route's handler, logs it, and reloads the
// configuration atomically (SIGHUP) without closing a listener or dropping a request.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gantry/internal/accesslog"
	"gantry/internal/certs"
	"gantry/internal/config"
	"gantry/internal/h3"
	"gantry/internal/http1"
	"gantry/internal/sendtimeout"
	"gantry/internal/systemd"
)

// Options are what the command line gives the server besides the config.
type Options struct {
	Logger  *slog.Logger
	Version string
	// WrapListener, when set, wraps every HTTP listener (the telescope's HTTP sensor
	// uses it to see bytes that are not HTTP at all).
	WrapListener func(net.Listener) net.Listener
	// BeforeBuild, when set, runs after the listeners are bound and before any
	// handler starts a process: the place to bind other privileged ports and drop
	// root, so that worker processes never run as root.
	BeforeBuild func(*Server) error
	// AdminSocket is the admin API's unix socket for `gantry reload`: "" is
	// adminsock.Path(), "off" none.
	AdminSocket string
	// Inherited, when set, holds the sockets the service manager passed (socket
	// activation): they serve the addresses they match, and only the others are
	// bound. A passed socket that matches no address is an error.
	Inherited *systemd.Sockets
	// CertOptions, when set, adjusts the certificate manager's options (tests
	// shorten its retry and renewal intervals).
	CertOptions func(*certs.Options)
	// TLSObserver, when set, is shown every TLS handshake (the telescope's HTTP
	// sensor).
	TLSObserver TLSObserver
	// Gate, when set, refuses connections at accept on every listener (plain,
	// TLS, admin, HTTP/3), before TLS or any parsing, and closes the open
	// connections of a source it bans: the telescope's bans.
	Gate Gate
}

// Gate decides at accept which sources may connect; *ban.List is one.
type Gate interface {
	// Listener wraps a listener: a refused source's connections are closed as
	// accepted, every other one is tracked until it closes.
	Listener(net.Listener) net.Listener
	// Admit and Track are the same for a transport with no net.Listener (QUIC).
	Admit(remote net.Addr) bool
	Track(remote net.Addr, close func()) (untrack func())
}

// RequestGate is a Gate that also refuses requests one by one: a trusted
// proxy's connection carries many clients, so one of them that is banned can
// only be refused per request; *ban.List is one.
type RequestGate interface {
	// Forbidden reports whether a request from remote (the TCP peer) with the
	// X-Forwarded-For values xff is forwarded for a banned client, and logs it.
	Forbidden(remote string, xff []string) bool
}

// Observer is called after every request with its record; it must be quick and must
// not keep rec or rec.Request.
type Observer func(rec *accesslog.Record)

// Server is a running gantry.
type Server struct {
	log     *slog.Logger
	version string
	started time.Time

	state     atomic.Pointer[state]
	accessLog atomic.Pointer[accesslog.Logger]
	requests  atomic.Uint64
	inflight  atomic.Int64
	fastHits  atomic.Uint64 // of requests, those answered on the fast path or, over HTTP/2 and 3, from the static cache
	observers []Observer

	reloadMu   sync.Mutex
	lastReload ReloadResult
	// retired is closed when the generation the last reload replaced has
	// drained and stopped its handlers (under reloadMu). A handler kept across
	// reloads serves requests counted on every generation that held it.
	retired chan struct{}

	mu        sync.Mutex
	listeners []net.Listener
	drains    []*drainListener // the listeners, for Drain
	servers   []*http.Server
	fast      []*http1.Server // fast loops in front of servers, when [server] fast_path
	admin     *http.Server
	closing   bool

	tlsListeners []net.Listener // [server] tls_listen
	tlsServers   []*http.Server
	quicConns    []net.PacketConn // bound for HTTP/3, until serveQUIC serves them
	h3Servers    []*h3.Server
	tlsObserver  TLSObserver
	gate         Gate
	reqGate      RequestGate    // the gate, when it refuses requests too
	certs        *certs.Manager // nil without tls_listen
	certOpts     func(*certs.Options)

	adminSockPath string
}

// ReloadResult says how the last reload went.
type ReloadResult struct {
	Time  time.Time `json:"time"`
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
	// What now serves, after a reload that worked.
	Sites  int `json:"sites"`
	Routes int `json:"routes"`
	// Restarted lists the routes whose worker processes were started anew
	// (new code for a WSGI app, changed options), as "path" or "host path".
	Restarted []string `json:"restarted,omitempty"`
	// RestartOnly lists changed settings a reload cannot apply.
	RestartOnly []string `json:"restart_only,omitempty"`
}

// New binds the listeners of cfg, so that a port in use is reported before anything
// starts, then builds the handlers (starting their worker processes). It serves
// nothing until Serve.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log, version: opts.Version, started: time.Now(), adminSockPath: opts.AdminSocket, certOpts: opts.CertOptions, tlsObserver: opts.TLSObserver, gate: opts.Gate}
	s.reqGate, _ = opts.Gate.(RequestGate)
	if err := s.listen(cfg, opts.WrapListener, opts.Inherited); err != nil {
		return nil, err
	}
	al, err := accesslog.Open(cfg.Server.AccessLog, cfg.Server.LogFormat)
	if err != nil {
		s.closeListeners()
		return nil, err
	}
	s.state.Store(&state{cfg: cfg, hosts: newHostTable(nil)})
	if opts.BeforeBuild != nil {
		if err := opts.BeforeBuild(s); err != nil {
			s.abandon(al)
			return nil, err
		}
	}
	if err := s.newCerts(cfg); err != nil {
		s.abandon(al)
		return nil, err
	}
	st, err := s.build(ctx, cfg, nil)
	if err != nil {
		s.abandon(al)
		return nil, err
	}
	s.accessLog.Store(al)
	s.state.Store(st)
	return s, nil
}

// Observe registers an observer; call it before Serve.
func (s *Server) Observe(o Observer) { s.observers = append(s.observers, o) }

// Config returns the config now in force.
func (s *Server) Config() *config.Config { return s.state.Load().cfg }

func (s *Server) listen(cfg *config.Config, wrap func(net.Listener) net.Listener, inherited *systemd.Sockets) error {
	claimed := inherited.Match(
		systemd.Want{Key: "listen", Addrs: cfg.Server.Listen},
		systemd.Want{Key: "tls_listen", Addrs: cfg.Server.TLSListen, Datagram: cfg.Server.HTTP3On()},
	)
	plain, secure := claimed["listen"], claimed["tls_listen"]
	lns, unbound := plain.Listeners, plain.Unbound
	tlns, tunbound := secure.Listeners, secure.Unbound
	closeAll := func() {
		for _, ln := range append(lns, tlns...) {
			ln.Close()
		}
		for _, pc := range secure.Packets {
			pc.Close()
		}
	}
	if err := inherited.Close(); err != nil {
		closeAll()
		return err
	}
	var lc net.ListenConfig
	for _, addrs := range []struct {
		to    *[]net.Listener
		addrs []string
	}{{&lns, unbound}, {&tlns, tunbound}} {
		for _, addr := range addrs.addrs {
			ln, err := lc.Listen(context.Background(), "tcp", addr)
			if err != nil {
				closeAll()
				return listenError(addr, err)
			}
			*addrs.to = append(*addrs.to, ln)
		}
	}
	for _, ln := range lns {
		dl := newDrainListener(ln)
		s.drains = append(s.drains, dl)
		ln = s.gated(dl)
		if wrap != nil {
			ln = wrap(ln)
		}
		s.listeners = append(s.listeners, ln)
	}
	// The telescope's wrapper reads plain HTTP bytes: TLS listeners go without.
	for _, ln := range tlns {
		dl := newDrainListener(ln)
		s.drains = append(s.drains, dl)
		s.tlsListeners = append(s.tlsListeners, s.gated(dl))
	}
	if err := s.listenQUIC(cfg, secure.Packets); err != nil {
		s.closeListeners()
		return err
	}
	return nil
}

// gated is ln behind the gate, when there is one. It goes outside the drain
// listener, which keeps the *net.TCPConn it needs, and inside everything that
// reads: a refused connection never gets a byte read or a TLS handshake.
func (s *Server) gated(ln net.Listener) net.Listener {
	if s.gate == nil {
		return ln
	}
	return s.gate.Listener(ln)
}

// abandon undoes a New that failed half way.
func (s *Server) abandon(al *accesslog.Logger) {
	s.closeListeners()
	al.Close()
	s.mu.Lock()
	admin := s.admin
	s.mu.Unlock()
	if admin != nil {
		admin.Close()
	}
}

func (s *Server) closeListeners() {
	for _, l := range slices.Concat(s.listeners, s.tlsListeners) {
		l.Close()
	}
	for _, pc := range s.quicConns {
		pc.Close()
	}
	s.listeners, s.tlsListeners, s.quicConns = nil, nil, nil
	if s.certs != nil {
		s.certs.Stop()
	}
}

func listenError(addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("listen %s: address already in use: another server runs there; stop it or pick another address (--listen or [server] listen)", addr)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("listen %s: permission denied: ports below 1024 need root (or CAP_NET_BIND_SERVICE); run as root with [server] user, or use a port above 1024", addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("listen %s: this machine has no such address; use 0.0.0.0 for all or 127.0.0.1 for local", addr)
	}
	return fmt.Errorf("listen %s: %w", addr, err)
}

// Addrs returns the bound listener addresses (useful with port 0).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		out[i] = l.Addr()
	}
	return out
}

// Serve serves every bound listener until Shutdown. It returns at once; errors of a
// listener are logged.
func (s *Server) Serve() {
	cfg := s.Config().Server
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ln := range s.listeners {
		// No http.Server WriteTimeout: it bounds a whole response, and would cut
		// every download and stream longer than it. [server] write_timeout is for
		// a client that stops reading (sendtimeout), applied per write.
		hs := &http.Server{
			Handler:           plainHandler{s},
			ReadHeaderTimeout: cfg.ReadHeaderTimeout.D(),
			ReadTimeout:       cfg.ReadTimeout.D(),
			IdleTimeout:       cfg.IdleTimeout.D(),
			MaxHeaderBytes:    int(cfg.MaxHeader),
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		s.servers = append(s.servers, hs)
		serve := func(ln net.Listener) error {
			return http1.ServeGuarded(hs, sendtimeout.Listener(ln, cfg.WriteTimeout.D()), s.log)
		}
		if cfg.Fast() {
			// The fast loop applies it to its own writes and to the connections
			// it hands to hs. A ban closes its source's connections through the
			// gate's wrappers: parked ones must keep them.
			fs := &http1.Server{Handler: fastHandler{s}, Fallback: hs, ReadHeaderTimeout: hs.ReadHeaderTimeout,
				IdleTimeout: hs.IdleTimeout, WriteTimeout: cfg.WriteTimeout.D(), MaxHeaderBytes: hs.MaxHeaderBytes, Logger: s.log,
				KeepParkedConns: s.gate != nil}
			s.fast = append(s.fast, fs)
			serve = fs.Serve
		}
		go func(ln net.Listener) {
			if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("listener stopped", "addr", ln.Addr().String(), "err", err)
			}
		}(ln)
	}
	s.serveTLS(cfg)
}

// ServeAdmin serves h on the admin listener (unless it is "off") and on the
// admin socket, and returns the bound address. Both have the main listeners'
// timeouts and share a bound on open connections.
func (s *Server) ServeAdmin(h http.Handler) (net.Addr, error) {
	addr := s.Config().Admin.Listen
	if addr == "off" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, listenError(addr, err)
	}
	sock, err := s.adminSocket()
	if err != nil {
		ln.Close()
		return nil, err
	}
	cfg := s.Config().Server
	// No http.Server WriteTimeout, as on the main listeners: it would cut the
	// event stream (/api/events); sendtimeout drops a client that stops reading.
	hs := &http.Server{Handler: h, ReadHeaderTimeout: cfg.ReadHeaderTimeout.D(), ReadTimeout: cfg.ReadTimeout.D(),
		IdleTimeout: cfg.IdleTimeout.D(), MaxHeaderBytes: int(cfg.MaxHeader), ConnContext: adminConnContext,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	// Long-lived responses (the dashboard's event streams) must end for Shutdown to finish.
	if c, ok := h.(Closer); ok {
		hs.RegisterOnShutdown(c.Close)
	}
	s.mu.Lock()
	s.admin = hs
	s.mu.Unlock()
	slots := make(chan struct{}, maxAdminConns)
	serve := func(ln net.Listener) {
		wrapped := sendtimeout.Listener(newLimitListener(ln, slots), cfg.WriteTimeout.D())
		if err := hs.Serve(wrapped); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}
	go serve(s.gated(ln))
	if sock != nil {
		// Shutdown closes it, which removes the file.
		go serve(sock)
	}
	return ln.Addr(), nil
}

// Shutdown stops accepting, lets in-flight requests finish until ctx ends, then stops
// the handlers' workers.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	var servers []*http.Server
	if len(s.fast) == 0 {
		servers = append(servers, s.servers...)
	}
	if s.admin != nil {
		servers = append(servers, s.admin)
	}
	servers = append(servers, s.tlsServers...)
	quic := s.h3Servers
	fast := s.fast
	listeners := slices.Concat(s.listeners, s.tlsListeners)
	s.mu.Unlock()
	var wg sync.WaitGroup
	var errs []error
	var emu sync.Mutex
	// stop runs each server's shutdown at once, and then close when it could not
	// finish in time.
	stop := func(shutdown func(context.Context) error, close func() error) {
		wg.Go(func() {
			if err := shutdown(ctx); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
				if close != nil {
					close()
				}
			}
		})
	}
	for _, hs := range servers {
		stop(hs.Shutdown, hs.Close)
	}
	for _, hs := range quic {
		stop(hs.Shutdown, nil)
	}
	// A fast loop shuts its net/http server down itself.
	for _, fs := range fast {
		stop(fs.Shutdown, nil)
	}
	if len(servers) == 0 && len(fast) == 0 {
		for _, l := range listeners {
			l.Close()
		}
	}
	wg.Wait()
	if s.certs != nil {
		s.certs.Stop()
	}
	if err := s.state.Load().shutdown(ctx, nil); err != nil {
		errs = append(errs, err)
	}
	if err := s.accessLog.Load().Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ReopenLogs reopens the access log file (SIGUSR1, after log rotation).
func (s *Server) ReopenLogs() error { return s.accessLog.Load().Reopen() }
