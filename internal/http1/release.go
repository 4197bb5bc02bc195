package http1

import (
	"fmt"
	"net"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// A parked connection is released unless Server.KeepParkedConns is set: the
// parker's epoll set holds a duplicate of its socket, and the net.Conn Accept
// returned is closed, and with it Go's poller state (a pollDesc, a netFD and
// its addresses, a finalizer) and whatever the listener wrapped it in. What is
// left of the connection is its conn, without a socket of Go's; waking makes
// a *net.TCPConn of the duplicate again.

// release takes c's socket from its net.Conn into a duplicate the parker arms;
// park calls it under s.mu (Shutdown reads c.sock under it) and p.mu, c in
// stateParked. On an error c is left as it was.
func (p *parker) release(c *conn) error {
	var fd int
	var err error
	cerr := c.raw.Control(func(s uintptr) {
		fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	})
	if cerr != nil {
		return cerr
	}
	if err != nil {
		return fmt.Errorf("dup: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT}
	setID(&ev, c.park.id)
	if err := unix.EpollCtl(p.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	// The duplicate keeps the socket open: this close only lets go of Go's
	// side, and of the listener's wrappers (a drain listener's count).
	c.sock.Close()
	c.nc, c.sock, c.raw, c.remote = nil, nil, nil, ""
	c.park.fd, c.park.released = int32(fd), true
	return nil
}

// closeParked closes a parked connection that Shutdown or the parker has taken
// out of stateParked and out of the parker's list.
func (c *conn) closeParked() {
	if c.park.released {
		unix.Close(int(c.park.fd))
		c.park.released = false
		return
	}
	c.sock.Close()
}

// attachHook, set by tests, runs as a woken connection begins to attach.
var attachHook atomic.Pointer[func()]

// attach makes the released socket, which has woken, a net.Conn again. On an
// error the socket is closed and c untracked: it is gone.
func (c *conn) attach() bool {
	if f := attachHook.Load(); f != nil {
		(*f)()
	}
	f := os.NewFile(uintptr(c.park.fd), "")
	nc, err := net.FileConn(f)
	f.Close()
	// A client that reset the connection while it was parked leaves a socket
	// with no peer: it is gone, as if it had closed.
	gone := err == nil && nc.RemoteAddr() == nil
	c.s.mu.Lock()
	c.park.released = false
	// Shutdown, forced meanwhile, could not close what had no net.Conn yet.
	gone = gone || err == nil && c.s.forced
	if err == nil && !gone {
		c.setConn(nc)
	}
	c.s.mu.Unlock()
	if gone {
		nc.Close()
	}
	if err != nil || gone {
		if err != nil && c.s.Logger != nil {
			c.s.Logger.Error("http1: closed a keep-alive connection woken from the parker: cannot make a net.Conn of it", "err", err)
		}
		c.s.track(c, false)
		return false
	}
	return true
}
