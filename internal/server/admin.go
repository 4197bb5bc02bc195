package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"gantry/internal/adminsock"
	"gantry/internal/supervise"
)

// maxAdminConns bounds the admin listener's open connections, so that a flood of
// them cannot take the descriptors the sites need; beyond it, new connections
// wait in the kernel's accept queue.
const maxAdminConns = 256

// limitListener lets at most cap(slots) of its connections be open at once; the
// slots may be shared between listeners.
type limitListener struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	once  sync.Once
}

func newLimitListener(ln net.Listener, slots chan struct{}) *limitListener {
	return &limitListener{Listener: ln, slots: slots, done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite keeps net/http's graceful close working through the wrapper.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// adminSocket opens the admin API's unix socket for the user gantry runs as
// (the [server] user once root is dropped), or returns nil when it is off or
// another gantry holds it.
func (s *Server) adminSocket() (net.Listener, error) {
	path := s.adminSockPath
	if path == "off" {
		return nil, nil
	}
	if path == "" {
		path = adminsock.Path()
	}
	uid, gid := os.Geteuid(), os.Getegid()
	if name := s.Config().Server.User; name != "" && uid == 0 {
		c, err := supervise.LookupCredential(name)
		if err != nil {
			return nil, fmt.Errorf("[server] user %q: %w", name, err)
		}
		uid, gid = int(c.Uid), int(c.Gid)
	}
	ln, err := adminsock.Listen(path, uid, gid, func(peer int) {
		s.log.Warn("admin socket: refused a connection from another user", "path", path, "peer_uid", peer, "allowed_uid", uid)
	})
	if errors.Is(err, adminsock.ErrInUse) {
		s.log.Warn("admin socket not opened: gantry reload will reach the other gantry", "err", err)
		return nil, nil
	}
	return ln, err
}

// adminConnContext marks the requests of the socket's connections: the socket
// lets in only gantry's own user and root, so they need no password.
func adminConnContext(ctx context.Context, c net.Conn) context.Context {
	if c.LocalAddr().Network() == "unix" {
		return adminsock.WithLocal(ctx)
	}
	return ctx
}
