package http1

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// defaultParkAfter is Server.ParkAfter's default: longer than the gap between a
// busy client's requests, so that parking, which costs system calls, is for
// connections that are really idle.
const defaultParkAfter = 250 * time.Millisecond

// moveAfter is how long a keep-alive connection waits on the goroutine that
// answered its last request, whose stack grew with the handler's calls: a
// connection still idle then waits out the rest of ParkAfter on a new
// goroutine, with the smallest stack, and the grown one is freed.
const moveAfter = 50 * time.Millisecond

// crowdedWaits is how many connections may wait on goroutines before one idle
// past moveAfter is parked then rather than moved: thousands of clients that
// connect at once and go idle (a crowd of browsers, a flood) would otherwise
// hold a goroutine, a net.Conn and Go's poller state each for all of
// ParkAfter. A busy client's next request comes within moveAfter.
const crowdedWaits = 512

// errParked ends a connection's goroutine: the parker holds the connection,
// or a new goroutine waits on with it.
var errParked = errors.New("http1: connection parked")

// waitIdle waits for the first bytes of the connection's next request holding no
// request state: the read is done by readIdle when the socket is readable, into a
// state taken from the pool then. d is the idle timeout (0: none). Past
// ParkAfter the connection goes to the parker and waitIdle returns errParked.
func (c *conn) waitIdle(d time.Duration) error {
	if c.st != nil {
		c.release()
	}
	now := time.Now()
	until := fromMono(c.idleUntil)
	if !c.resumed {
		until = time.Time{}
		if d > 0 {
			until = now.Add(d)
		}
	}
	c.resumed = false
	// Kept for readHead: with no ReadHeaderTimeout, a head begun in this wait
	// is bound by it, not by ParkAfter's deadline.
	c.idleUntil = mono(until)
	if !c.state.CompareAndSwap(stateActive, stateIdle) {
		return net.ErrClosed
	}
	c.s.waiting.Add(1)
	defer c.s.waiting.Add(-1)
	after := c.s.parkAfter()
	moved := c.moved
	c.moved = false
	if moved {
		after = max(after-moveAfter, time.Millisecond)
	}
	for {
		wake, parkable := until, false
		if after > 0 && (until.IsZero() || until.Sub(now) > after) {
			wake, parkable = now.Add(after), true
		}
		move := parkable && !moved && after > 2*moveAfter
		if move {
			wake = now.Add(moveAfter)
		}
		c.nc.SetReadDeadline(wake)
		c.readErr = nil
		err := c.raw.Read(c.onReadable)
		if err != nil && move && errors.Is(err, os.ErrDeadlineExceeded) && c.s.waiting.Load() <= crowdedWaits {
			// Still idle: a new goroutine waits on, as one the parker starts
			// (idleUntil holds); this one must not touch c again. Crowded, it
			// is parked now instead.
			if !c.state.CompareAndSwap(stateIdle, stateActive) {
				return net.ErrClosed // closed by Shutdown
			}
			c.moved = true
			go c.serve(true)
			return errParked
		}
		if err != nil && parkable && errors.Is(err, os.ErrDeadlineExceeded) {
			p := c.s.getParker()
			if p != nil && p.park(c, until) {
				return errParked
			}
			if p != nil || c.s.closing.Load() {
				// Refused (stopping, or the socket is gone): wait here until the
				// idle timeout. Without a parker yet, try again after ParkAfter.
				after = 0
			}
			now = time.Now()
			continue
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return net.ErrClosed // closed by Shutdown
		}
		if err != nil {
			return err
		}
		return c.readErr
	}
}

// waitTLS is waitIdle for a TLS connection, which may hold its next request
// decrypted already, so that only its own Read can wait: one byte is read
// without a request state, the rest of its record then comes from the
// connection's buffer without a system call.
func (c *conn) waitTLS() error {
	if c.st != nil {
		c.release()
	}
	n, err := c.tls.Read(c.one[:])
	if !c.state.CompareAndSwap(stateIdle, stateActive) {
		return net.ErrClosed
	}
	if n == 1 {
		c.acquire()
		c.st.buf[0] = c.one[0]
		c.w = 1
	}
	return err
}

// readIdle is the read of an idle wait, called by the runtime when the socket
// may be readable: it takes a request state only for bytes that are there, and
// gives it back on EAGAIN, so the wait costs the same system calls as a plain
// Read (read, EAGAIN, poll, read).
func (c *conn) readIdle(fd uintptr) bool {
	if c.st == nil {
		c.acquire()
	}
	for {
		n, err := syscall.Read(int(fd), c.st.buf)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			c.release()
			return false
		case err != nil:
			c.readErr = os.NewSyscallError("read", err)
		case n == 0:
			c.readErr = io.EOF
		default:
			c.w = n
		}
		return true
	}
}
