// Package h3 serves HTTP/3 (RFC 9114, over QUIC with quic-go) beside gantry's TLS
// listeners: the same handler on the UDP port of a TLS listener, with the same
// certificates, and the Alt-Svc header that tells HTTP/1.1 and HTTP/2 clients it is
// there.
package h3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// Options configure a Server; zero durations take their defaults.
type Options struct {
	Handler http.Handler
	// TLSConfig gives the certificates (Certificates, GetCertificate or
	// GetConfigForClient); it is cloned, and the clone offers only "h3" by ALPN.
	// QUIC always runs TLS 1.3, whatever its MinVersion says.
	TLSConfig *tls.Config
	Logger    *slog.Logger
	// HandshakeTimeout bounds a QUIC handshake (default 10s); IdleTimeout closes a
	// connection with no request for that long (default 2m), ReadHeaderTimeout one
	// whose first request has not reached the handler that long after the
	// handshake (default 10s), however often the client pings.
	HandshakeTimeout  time.Duration
	IdleTimeout       time.Duration
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes bounds a request's header block (default http.DefaultMaxHeaderBytes).
	MaxHeaderBytes int
	// Admit, when set, is asked about every connection attempt's source before
	// its handshake: false refuses it (CONNECTION_REFUSED), as a banned source's
	// TCP connections are closed at accept. Track, when set, registers each
	// connection with the function that closes it, for a ban that comes later;
	// it returns the function that unregisters it.
	Admit func(remote net.Addr) bool
	Track func(remote net.Addr, close func()) (untrack func())
	// Conn, when set, is a UDP socket already bound (while gantry could still bind
	// privileged ports, or passed by the service manager) to serve instead of
	// binding addr; the Server closes it.
	Conn net.PacketConn
}

// Server is an HTTP/3 listener on one UDP socket.
type Server struct {
	log  *slog.Logger
	pc   net.PacketConn
	hs   *http3.Server
	port int
	// listen starts QUIC on pc: Serve calls it when the first datagram comes.
	listen func() (*quic.Transport, *quic.Listener, error)

	mu     sync.Mutex
	tr     *quic.Transport // nil until QUIC is started
	ln     *quic.Listener
	closed bool
}

// Listen binds the UDP address addr, so that a port in use is reported before
// anything is served; Serve serves it.
func Listen(ctx context.Context, addr string, opts Options) (*Server, error) {
	if opts.Handler == nil || opts.TLSConfig == nil {
		return nil, errors.New("h3: a handler and a TLS config are required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pc := opts.Conn
	if pc == nil {
		var lc net.ListenConfig
		var err error
		if pc, err = lc.ListenPacket(ctx, "udp", addr); err != nil {
			return nil, fmt.Errorf("http3 listener %s: %w (is another program using this UDP port?)", addr, err)
		}
	}
	qc := &quic.Config{
		HandshakeIdleTimeout: orDefault(opts.HandshakeTimeout, 10*time.Second),
		MaxIdleTimeout:       orDefault(opts.IdleTimeout, 2*time.Minute),
		// 0-RTT data can be replayed by anyone who captured it, and gantry's
		// gateways cannot tell a replayed POST from a new one.
		Allow0RTT: false,
	}
	// A Transport of our own (not quic.Listen's) outlives its listener: Shutdown
	// stops accepting at once and still serves the connections it has.
	tr := &quic.Transport{Conn: pc}
	if admit := opts.Admit; admit != nil {
		tr.ConnContext = func(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
			if !admit(info.RemoteAddr) {
				return ctx, errRefused
			}
			return ctx, nil
		}
	}
	tc := http3.ConfigureTLSConfig(opts.TLSConfig)
	s := &Server{log: log, pc: pc, port: pc.LocalAddr().(*net.UDPAddr).Port}
	s.listen = func() (*quic.Transport, *quic.Listener, error) {
		// A Listener (not an EarlyListener) hands over connections only once their
		// handshake is complete.
		ln, err := tr.Listen(tc, qc)
		if err != nil {
			tr.Close()
			return nil, nil, fmt.Errorf("http3 listener %s: %w", pc.LocalAddr(), err)
		}
		return tr, ln, nil
	}
	readHeader := orDefault(opts.ReadHeaderTimeout, 10*time.Second)
	s.hs = &http3.Server{
		Handler:        watched(stripConnectionFields(opts.Handler)),
		IdleTimeout:    qc.MaxIdleTimeout,
		MaxHeaderBytes: opts.MaxHeaderBytes,
		Logger:         log,
		ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
			if track := opts.Track; track != nil {
				untrack := track(c.RemoteAddr(), func() {
					c.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeExcessiveLoad), "refused")
				})
				context.AfterFunc(c.Context(), untrack)
			}
			return watchConn(ctx, c, readHeader, qc.MaxIdleTimeout)
		},
	}
	return s, nil
}

var errRefused = errors.New("h3: source refused")

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Addr returns the bound UDP address.
func (s *Server) Addr() net.Addr { return s.pc.LocalAddr() }

// Port returns the bound UDP port, the one to announce in Alt-Svc.
func (s *Server) Port() int { return s.port }

// Serve serves HTTP/3 until Shutdown or Close, when it returns http.ErrServerClosed.
//
// QUIC starts when the first datagram arrives, not before: until a client that
// saw Alt-Svc tries HTTP/3, the port holds no QUIC goroutines, buffers or
// connection tables, and quic-go's code is never paged in. The datagram waits
// in the socket meanwhile, so the first handshake only takes a goroutine's start
// longer.
func (s *Server) Serve() error {
	if err := awaitDatagram(s.pc); err != nil {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return http.ErrServerClosed
		}
		return fmt.Errorf("http3 listener %s: %w", s.pc.LocalAddr(), err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	tr, ln, err := s.listen()
	if err != nil {
		s.mu.Unlock()
		return err
	}
	s.tr, s.ln = tr, ln
	s.mu.Unlock()
	err = s.hs.ServeListener(ln)
	if errors.Is(err, quic.ErrServerClosed) {
		err = http.ErrServerClosed
	}
	return err
}

// awaitDatagram returns when a datagram can be read from pc, without reading
// it, or with pc's error once it is closed.
func awaitDatagram(pc net.PacketConn) error {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return nil // QUIC starts at once
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var b [1]byte
	return rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return !errors.Is(err, syscall.EAGAIN)
	})
}

// Shutdown stops accepting connections, tells the clients by GOAWAY, and lets
// requests in flight finish until ctx ends; then it closes every connection and
// the socket. It returns ctx's error when requests had to be cut.
func (s *Server) Shutdown(ctx context.Context) error {
	lerr := s.closeListener()
	err := s.hs.Shutdown(ctx)
	return errors.Join(lerr, err, s.closeSocket())
}

// Close closes every connection and the socket at once.
func (s *Server) Close() error {
	lerr := s.closeListener()
	err := s.hs.Close()
	return errors.Join(lerr, err, s.closeSocket())
}

// closeListener stops new connections, and QUIC from starting; http3.Server
// leaves closing a listener it was given to its caller.
func (s *Server) closeListener() error {
	s.mu.Lock()
	s.closed = true
	ln := s.ln
	s.mu.Unlock()
	if ln == nil {
		return nil
	}
	if err := ln.Close(); err != nil && !errors.Is(err, quic.ErrServerClosed) {
		return err
	}
	return nil
}

// closeSocket ends what is left of the connections and closes the UDP socket
// (which ends a Serve still waiting for its first datagram).
func (s *Server) closeSocket() error {
	s.mu.Lock()
	tr := s.tr
	s.mu.Unlock()
	var err error
	if tr != nil {
		err = tr.Close()
	}
	if cerr := s.pc.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	return err
}
