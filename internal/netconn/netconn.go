// Package netconn holds what a net.Conn wrapper that only watches a connection
// (the telescope's sensor, the ban list) must pass through, so that the fast path
// still finds the socket beneath it.
package netconn

import (
	"io"
	"net"
)

// Watched is embedded by a wrapper that observes a connection: it keeps the
// wrapped connection's sendfile (ReadFrom) and half-close (CloseWrite), and
// gives the fast path the connection itself (NetConn, as crypto/tls.Conn's
// does) to write beneath wrappers that only watch, and to wait for and read a
// keep-alive connection's later requests there: a connection's first bytes are
// always read through its wrappers, and a watcher of reads must look at those
// only (the telescope's sensor does).
type Watched struct {
	net.Conn
}

// NetConn returns the wrapped connection.
func (w Watched) NetConn() net.Conn { return w.Conn }

// ReadFrom keeps sendfile(2) for file bodies.
func (w Watched) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := w.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.Conn}, r)
}

// CloseWrite half-closes the connection when it can.
func (w Watched) CloseWrite() error {
	if cw, ok := w.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
