package http1

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"
)

type handshakeResult int

const (
	handshakeFailed handshakeResult = iota // the connection is done
	handshakeHTTP1                         // served by the fast loop
	handshakeOther                         // handed to Fallback as the *tls.Conn
	handshakeH2                            // served by H2
)

// handshake runs the TLS handshake within ReadHeaderTimeout (a client that
// connects and sends nothing holds a goroutine no longer than one that sends
// half a head), and routes the connection by the protocol ALPN chose.
func (c *conn) handshake() handshakeResult {
	if d := c.s.ReadHeaderTimeout; d > 0 {
		c.sock.SetDeadline(time.Now().Add(d))
	}
	err := c.tls.Handshake()
	if h := c.s.HandshakeDone; h != nil {
		h(c.sock, err)
	}
	if err != nil {
		c.handshakeError(err)
		return handshakeFailed
	}
	c.sock.SetDeadline(time.Time{})
	cs := c.tls.ConnectionState()
	switch cs.NegotiatedProtocol {
	case "", "http/1.1":
		c.cs = &cs
		return handshakeHTTP1
	}
	if cs.NegotiatedProtocol == "h2" && c.s.H2 != nil {
		// Gathered, a batch's write does not wait for a client that reads
		// slowly, and the end of the last answers still reaches it after
		// Shutdown closed the connection.
		c.coalesce.coalesce()
		return handshakeH2
	}
	// net/http finds the handshake done and serves h2 through its TLSNextProto;
	// it needs the *tls.Conn itself for that.
	if cs.NegotiatedProtocol == "h2" {
		c.coalesce.coalesce()
	}
	c.s.handed.push(c.tls)
	return handshakeOther
}

// handshakeError answers a client that spoke plain HTTP to the TLS port as
// net/http does, so that a person who typed http:// by mistake learns why, and
// logs the failure for whoever debugs a client.
func (c *conn) handshakeError(err error) {
	var re tls.RecordHeaderError
	if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
		re.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		err = errors.New("client sent an HTTP request to an HTTPS server")
	}
	if c.s.Logger != nil {
		c.s.Logger.Debug("http1: TLS handshake failed", "remote", c.remote, "err", err)
	}
}

// looksLikeHTTP reports whether a TLS record header is the start of a plain
// HTTP request (net/http's test).
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// tlsGuard is a TLS connection handed to Fallback mid-way: net/http serves it
// as plain HTTP/1.1 (it is no *tls.Conn) but takes r.TLS from ConnectionState,
// so gateways still see https.
type tlsGuard struct {
	*Guard
	state *tls.ConnectionState
}

func (g *tlsGuard) ConnectionState() tls.ConnectionState { return *g.state }

// guardOf is the framing guard of a Fallback connection, nil for one handed over
// as a *tls.Conn.
func guardOf(c net.Conn) *Guard {
	switch g := c.(type) {
	case *Guard:
		return g
	case *tlsGuard:
		return g.Guard
	}
	return nil
}
