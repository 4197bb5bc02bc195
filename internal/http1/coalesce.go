package http1

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// maxGathered bounds the bytes a coalescing connection holds unwritten: a Write
// beyond it waits for the socket, so a client that reads slowly still slows the
// server down instead of growing a buffer.
const maxGathered = 64 << 10

// maxKept is the largest buffer a busy HTTP/2 connection keeps for its next
// batch (the rare big one is allocated anew); an idle one keeps none.
const maxKept = 16 << 10

// closeGrace is how long a closed coalescing connection keeps trying to write
// what it still holds (the GOAWAY, the TLS close_notify) before it cuts the
// socket: crypto/tls gives its close_notify as long.
const closeGrace = 5 * time.Second

// coalesceConn is the socket under a TLS connection. Until coalesce is called it
// passes everything through. After (HTTP/2, whose server in net/http flushes
// each response on its own: one TLS record, one write system call and one
// wakeup per response) its writes are gathered and written by a goroutine of
// the connection's own, which first yields to the goroutines ready to run: under
// load, the other streams' handlers and the HTTP/2 server loop add their
// responses, and one system call carries them all; idle, a write costs one
// goroutine switch more. Errors of a gathered write are returned by the next
// Write, and close the socket, so the reader sees them too.
//
// A Write that returned nil is the socket's, as it is the kernel's on a plain
// socket: write deadlines set after it do not cut it (crypto/tls sets a past one
// as it closes, after its close_notify). They bound Write itself, which waits
// only for room; the socket's own writes are bounded by the write_timeout
// underneath (sendtimeout) and, after Close, by closeGrace.
type coalesceConn struct {
	net.Conn
	on      atomic.Bool
	holding atomic.Bool
	held    []byte // written while holding

	mu     sync.Mutex
	space  sync.Cond // signalled when gathered bytes went out
	buf    []byte    // gathered, not yet written
	spare  []byte
	closed bool
	err    error       // the first write error: every later Write returns it
	dl     time.Time   // the write deadline, for Write
	wake   *time.Timer // wakes a Write waiting for room at dl
	cut    *time.Timer // closes the socket closeGrace after Close
	kick   chan struct{}
	done   chan struct{} // closed by Close
}

func newCoalesceConn(nc net.Conn) *coalesceConn {
	c := &coalesceConn{Conn: nc}
	c.space.L = &c.mu
	return c
}

// NetConn returns the connection underneath.
func (c *coalesceConn) NetConn() net.Conn { return c.Conn }

// coalesce starts gathering writes; it is called before any concurrent use.
func (c *coalesceConn) coalesce() {
	c.kick = make(chan struct{}, 1)
	c.done = make(chan struct{})
	c.on.Store(true)
	go c.flusher()
}

// Hold gathers the Writes that follow until Release: internal/h2 holds while
// crypto/tls encrypts one batch of frames, which it writes a record at a time,
// so that the batch leaves in one system call.
func (c *coalesceConn) Hold() {
	c.mu.Lock()
	c.holding.Store(true)
	c.mu.Unlock()
}

// Release writes what was gathered since Hold (or, coalescing, hands it to
// the flusher).
func (c *coalesceConn) Release() error {
	c.mu.Lock()
	b := c.held
	c.held = nil
	c.holding.Store(false)
	c.mu.Unlock()
	if len(b) == 0 {
		return nil
	}
	_, err := c.Write(b) // gathered in turn, once coalescing
	if cap(b) <= maxKept {
		c.mu.Lock()
		if c.held == nil {
			c.held = b[:0]
		}
		c.mu.Unlock()
	}
	return err
}

func (c *coalesceConn) Write(p []byte) (int, error) {
	if c.holding.Load() {
		c.mu.Lock()
		if c.holding.Load() {
			c.held = append(c.held, p...)
			c.mu.Unlock()
			return len(p), nil
		}
		c.mu.Unlock()
	}
	if !c.on.Load() {
		return c.Conn.Write(p)
	}
	c.mu.Lock()
	for c.err == nil && !c.closed {
		if !c.dl.IsZero() && !time.Now().Before(c.dl) {
			c.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		if len(c.buf) < maxGathered {
			break
		}
		if !c.dl.IsZero() {
			if c.wake == nil {
				c.wake = time.AfterFunc(time.Until(c.dl), c.wakeWriters)
			} else {
				c.wake.Reset(time.Until(c.dl))
			}
		}
		c.space.Wait()
	}
	if err := c.err; err != nil || c.closed {
		c.mu.Unlock()
		if err == nil {
			err = net.ErrClosed
		}
		return 0, err
	}
	c.buf = append(c.buf, p...)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default: // the flusher is due anyway
	}
	return len(p), nil
}

func (c *coalesceConn) wakeWriters() {
	c.mu.Lock()
	c.space.Broadcast()
	c.mu.Unlock()
}

// SetDeadline sets the read deadline on the socket and the write deadline for
// Write.
func (c *coalesceConn) SetDeadline(t time.Time) error {
	if !c.on.Load() {
		return c.Conn.SetDeadline(t)
	}
	c.SetWriteDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline bounds the Writes that follow, not the bytes earlier ones
// gathered.
func (c *coalesceConn) SetWriteDeadline(t time.Time) error {
	if !c.on.Load() {
		return c.Conn.SetWriteDeadline(t)
	}
	c.mu.Lock()
	c.dl = t
	c.space.Broadcast() // a waiting Write looks at the new deadline
	c.mu.Unlock()
	return nil
}

// flusher writes what Write gathered; once the connection is closed, it writes
// what is left and closes the socket. A write error closes the socket at once.
func (c *coalesceConn) flusher() {
	for {
		select {
		case <-c.kick:
		case <-c.done:
		}
		c.mu.Lock()
		b := c.buf
		c.buf, c.spare = c.spare[:0], nil
		if len(b) >= maxGathered {
			c.space.Broadcast() // a Write waiting for room has it now
		}
		c.mu.Unlock()
		var err error
		if len(b) > 0 {
			_, err = c.Conn.Write(b)
		}
		c.mu.Lock()
		switch {
		case len(c.buf) == 0:
			// idle: the next response allocates its buffer anew
			c.buf = nil
		case cap(b) <= maxKept:
			c.spare = b[:0]
		}
		if err != nil {
			c.err = err
		}
		c.space.Broadcast()
		finished := c.closed && len(c.buf) == 0
		cut := c.cut
		c.mu.Unlock()
		if err != nil || finished {
			if cut != nil {
				cut.Stop()
			}
			c.mu.Lock()
			if c.wake != nil {
				c.wake.Stop()
			}
			c.mu.Unlock()
			c.Conn.Close()
			return
		}
	}
}

// Close has what is gathered written (within closeGrace) and the socket closed
// after it; it does not wait for that.
func (c *coalesceConn) Close() error {
	if !c.on.Load() {
		return c.Conn.Close()
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	failed := c.err != nil
	if !failed {
		c.cut = time.AfterFunc(closeGrace, func() { c.Conn.Close() })
	}
	c.space.Broadcast()
	c.mu.Unlock()
	close(c.done)
	if failed {
		return c.Conn.Close()
	}
	return nil
}
