package http1

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"gantry/internal/h2"
)

// Handler answers fast requests.
type Handler interface {
	// ServeFast answers r on w and returns true, or returns false having written
	// nothing (headers it set are discarded): the connection, with r still unread,
	// then goes to the fallback server. r and w belong to the connection and are
	// reused for its next request: neither may be kept after ServeFast returns.
	ServeFast(w *ResponseWriter, r *http.Request) bool
}

// Server runs the fast loop on the connections of its listeners and hands the
// others to Fallback.
type Server struct {
	Handler  Handler
	Fallback *http.Server // served on an internal listener of handed-off connections
	// Timeouts, as in http.Server: zero means none.
	ReadHeaderTimeout, IdleTimeout, WriteTimeout time.Duration
	// MaxHeaderBytes bounds a fast request's head (net/http answers a longer one).
	MaxHeaderBytes int
	// WatchAfter is how long a request that asked for ResponseWriter.WatchClient
	// runs before its connection is read for the client leaving (default 50ms).
	// The read takes a goroutine, so quick answers never start one; a slow one
	// (a gateway waiting on its application) learns within this time that
	// nobody waits for it any more.
	WatchAfter time.Duration
	// ParkAfter is how long a plain keep-alive connection waits for its next
	// request on its own goroutine before the parker (one epoll set, one
	// goroutine for all) holds it (default 250ms, negative: never). Waiting costs
	// no buffer either way; parked, it costs no goroutine stack. While more
	// than crowdedWaits connections wait, one is parked after moveAfter.
	ParkAfter time.Duration
	// KeepParkedConns keeps a parked connection's net.Conn as Accept returned
	// it. Without it the parker holds a duplicate of the socket and closes the
	// net.Conn, Go's poller state and the listener's wrappers with it, and a
	// woken connection is a new *net.TCPConn: set it when something else
	// closes accepted connections and counts on that ending them (a ban list's
	// listener), or when a wrapper answers for the connection in a way its
	// socket cannot (another RemoteAddr).
	KeepParkedConns bool
	Logger          *slog.Logger
	// TLSConfig, when set, makes every connection TLS. Each handshakes on its own
	// goroutine, within ReadHeaderTimeout; one that negotiates HTTP/1.1 (or no
	// protocol) is served here with r.TLS set, any other (h2, acme-tls/1) goes to
	// Fallback as the *tls.Conn itself, which must then have TLSConfig too (for
	// its TLSNextProto). Connections handed over mid-way give Fallback's requests
	// the same r.TLS.
	TLSConfig *tls.Config
	// H2, when set, serves the TLS connections that negotiate "h2" instead of
	// Fallback; Shutdown sends them a GOAWAY and waits for their open streams.
	H2 *h2.Server
	// HandshakeDone, when set, is told of every TLS handshake: the connection
	// tls.Server was given (ClientHelloInfo.Conn) and the handshake's error.
	HandshakeDone func(nc net.Conn, err error)

	closing atomic.Bool
	parker  atomic.Pointer[parker]
	waiting atomic.Int64 // connections in waitIdle, on a goroutine
	// forced is set, under mu, when Shutdown's context ended and it closed
	// every connection: one woken from the parker then is closed as it attaches.
	forced bool
	// reapEveryD overrides defaultReapEvery (tests).
	reapEveryD time.Duration
	mu         sync.Mutex
	conns      map[*conn]struct{}
	lns        []net.Listener
	handed     *handoffListener
	once       sync.Once
	fbDone     chan struct{}
	parkRetry  atomic.Int64 // mono: when a parker that failed to start may be tried again
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = http.ErrServerClosed

func (s *Server) init(addr net.Addr) {
	s.once.Do(func() {
		s.conns = map[*conn]struct{}{}
		s.handed = newHandoffListener(addr)
		s.fbDone = make(chan struct{})
		guardHooks(s.Fallback)
		go func() {
			defer close(s.fbDone)
			if err := s.Fallback.Serve(s.handed); err != nil && !errors.Is(err, http.ErrServerClosed) && s.Logger != nil {
				s.Logger.Error("http1: fallback server stopped", "err", err)
			}
		}()
	})
}

// Serve accepts connections on ln until Shutdown, serving each on its own goroutine.
func (s *Server) Serve(ln net.Listener) error {
	s.init(ln.Addr())
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of descriptors and the like: back off as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := newConn(s, nc)
		if !s.track(c, true) {
			nc.Close()
			continue
		}
		go c.serve(false)
	}
}

func (s *Server) parkAfter() time.Duration {
	switch {
	case s.ParkAfter < 0:
		return 0
	case s.ParkAfter == 0:
		return defaultParkAfter
	}
	return s.ParkAfter
}

func (s *Server) reapEvery() time.Duration {
	if s.reapEveryD > 0 {
		return s.reapEveryD
	}
	return defaultReapEvery
}

// getParker returns the server's parker, started on first use; nil once
// Shutdown has begun, or when it cannot start: the error is logged and the
// parker tried again after reapEvery (a flood that took every descriptor may
// be over by then).
func (s *Server) getParker() *parker {
	if p := s.parker.Load(); p != nil {
		return p
	}
	if s.parkRetryLater() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.parker.Load(); p != nil || s.closing.Load() || s.parkRetryLater() {
		return p
	}
	p, err := newParker(s)
	if err != nil {
		s.parkRetry.Store(int64(mono(time.Now().Add(s.reapEvery()))))
		if s.Logger != nil {
			s.Logger.Error("http1: idle connections keep their goroutine: cannot start the parker (trying again later)",
				"err", err, "retry", s.reapEvery())
		}
		return nil
	}
	s.parker.Store(p)
	return p
}

// parkRetryLater reports whether the parker failed to start too recently to
// try again.
func (s *Server) parkRetryLater() bool {
	r := s.parkRetry.Load()
	return r != 0 && mono(time.Now()) < time.Duration(r)
}

// Parked is the number of keep-alive connections the parker holds.
func (s *Server) Parked() int {
	if p := s.parker.Load(); p != nil {
		return p.count()
	}
	return 0
}

func isTemporary(err error) bool {
	te, ok := err.(interface{ Temporary() bool })
	return ok && te.Temporary()
}

func (s *Server) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing.Load() {
			return false
		}
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
	return true
}

// Shutdown stops accepting, closes idle connections, lets in-flight fast requests
// finish (their connections then close), and shuts the fallback server down, all
// within ctx; when ctx ends first the remaining connections are closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	lns := s.lns
	handed := s.handed
	p := s.parker.Load()
	s.mu.Unlock()
	if p != nil {
		// After closeIdle has closed the parked connections, or ctx's end.
		defer p.stop()
	}
	for _, ln := range lns {
		ln.Close()
	}
	if s.H2 != nil {
		s.H2.Shutdown()
	}
	if handed != nil {
		// Serve may not have started yet, and then Fallback.Shutdown would not
		// close it.
		defer handed.Close()
	}
	var fbErr error
	fbDone := make(chan struct{})
	go func() {
		defer close(fbDone)
		if handed != nil {
			fbErr = s.Fallback.Shutdown(ctx)
		}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle() {
			break
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.forced = true
			for c := range s.conns {
				if c.state.CompareAndSwap(stateParked, stateClosed) {
					p.remove(c)
					c.closeParked()
					delete(s.conns, c)
				} else if c.sock != nil {
					// nil: woken from the parker, and its goroutine is making
					// its net.Conn; attach sees forced and closes it.
					c.sock.Close()
				}
			}
			s.mu.Unlock()
			<-fbDone
			s.Fallback.Close()
			return ctx.Err()
		case <-tick.C:
		}
	}
	<-fbDone
	if fbErr != nil {
		s.Fallback.Close()
	}
	return fbErr
}

// closeIdle closes the connections waiting for a request and reports whether none
// is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		switch {
		case c.state.CompareAndSwap(stateParked, stateClosed):
			// No goroutine will see it close.
			s.parker.Load().remove(c)
			c.closeParked()
			delete(s.conns, c)
		case c.state.CompareAndSwap(stateIdle, stateClosed) ||
			mono(time.Now())-c.created > newIdleAfter && c.state.CompareAndSwap(stateNew, stateClosed):
			c.sock.Close()
		}
	}
	return len(s.conns) == 0
}

// handoff gives nc, whose first bytes are pending, to the fallback server,
// behind the framing guard; cs is the connection's TLS state, nil for plain HTTP.
func (s *Server) handoff(nc net.Conn, pending []byte, cs *tls.ConnectionState) {
	// net/http sets its own deadlines, and none when a timeout is zero.
	nc.SetDeadline(time.Time{})
	g := newGuard(&replayConn{Conn: nc, pending: pending}, s.Fallback.MaxHeaderBytes, s.Fallback.ReadHeaderTimeout, s.Logger)
	if cs != nil {
		s.handed.push(&tlsGuard{Guard: g, state: cs})
		return
	}
	s.handed.push(g)
}

// handoffListener is the net.Listener the fallback server accepts handed-off
// connections from.
type handoffListener struct {
	addr  net.Addr
	ch    chan net.Conn
	done  chan struct{}
	close sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.close.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// replayConn is a handed-off connection: its reads first return the bytes the fast
// loop had already read. It keeps the optional methods net/http looks for on a
// *net.TCPConn (ReadFrom for sendfile, CloseWrite).
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *replayConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// writerOnly hides a writer's ReadFrom, so io.Copy does not call it back.
type writerOnly struct{ io.Writer }
