package server

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// drainSilentAfter is how long a connection that has sent nothing may still be
// carrying its first request: past it, it is a browser's speculative connection
// and Shutdown may close it.
const drainSilentAfter = time.Second

// drainListener keeps the connections it accepted until they close, so that Drain
// can wait for the ones whose first request is on its way or unanswered: net/http
// and the fast path both close, on Shutdown, a connection whose first request they
// have not read yet, and the client sees its request fail. Under socket activation
// the next gantry would have served it.
type drainListener struct {
	net.Listener
	mu       sync.Mutex
	conns    map[*drainConn]struct{}
	draining bool
	parked   bool          // Accept saw the listener stop after Drain
	closed   chan struct{} // Close was called
	once     sync.Once
}

func newDrainListener(ln net.Listener) *drainListener {
	return &drainListener{Listener: ln, conns: map[*drainConn]struct{}{}, closed: make(chan struct{})}
}

func (l *drainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if !l.draining {
			return nil, err
		}
		// Stopped by Drain: wait for the server's own Close, so that it sees the
		// listener close when it expects to, not as an error.
		l.parked = true
		l.mu.Unlock()
		<-l.closed
		l.mu.Lock()
		return nil, net.ErrClosed
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	dc := &drainConn{TCPConn: tc, l: l, accepted: time.Now()}
	l.conns[dc] = struct{}{}
	return dc, nil
}

func (l *drainListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	err := l.Listener.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.draining && errors.Is(err, net.ErrClosed) {
		return nil // stop closed it
	}
	return err
}

// stop makes Accept return no more connections; the socket's queue stays for
// whoever else holds it (the service manager, the next gantry).
func (l *drainListener) stop() {
	l.mu.Lock()
	l.draining = true
	l.mu.Unlock()
	l.Listener.Close()
}

// settled reports whether Accept has stopped and every connection it accepted has
// been answered, has closed, or has been silent since drainSilentAfter.
func (l *drainListener) settled(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.parked {
		return false
	}
	for c := range l.conns {
		if !c.settled(now) {
			return false
		}
	}
	return true
}

// drainConn is an accepted connection; it keeps every method of *net.TCPConn
// (sendfile through ReadFrom, CloseWrite) and unwraps for the fast path.
type drainConn struct {
	*net.TCPConn
	l        *drainListener
	accepted time.Time
	once     sync.Once
}

func (c *drainConn) NetConn() net.Conn { return c.TCPConn }

func (c *drainConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.TCPConn.Close()
}

// settled: the kernel's counters say whether the client sent bytes and gantry
// answered (the fast path writes beneath this wrapper, sendfile included).
func (c *drainConn) settled(now time.Time) bool {
	rc, err := c.TCPConn.SyscallConn()
	if err != nil {
		return true
	}
	var info *unix.TCPInfo
	var ierr error
	if err := rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil || ierr != nil {
		return true // closed meanwhile
	}
	if info.Bytes_sent > 0 {
		return true
	}
	return info.Bytes_received == 0 && now.Sub(c.accepted) >= drainSilentAfter
}

// Drain stops accepting and waits, until ctx ends, for the connections already
// accepted to be answered (their first response started), closed, or silent for
// drainSilentAfter, so that the Shutdown that follows drops no request a client
// has sent. Connections still in the socket's queue stay there: with socket
// activation the next gantry serves them.
func (s *Server) Drain(ctx context.Context) error {
	s.mu.Lock()
	drains := s.drains
	s.mu.Unlock()
	for _, l := range drains {
		l.stop()
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		all := true
		now := time.Now()
		for _, l := range drains {
			if !l.settled(now) {
				all = false
				break
			}
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(errors.New("drain: connections still unanswered"), ctx.Err())
		case <-tick.C:
		}
	}
}
