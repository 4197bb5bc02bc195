package httpsensor

import (
	"gantry/internal/netconn"
	"net"
	"strconv"
	"time"
)

// WrapListener returns ln with every accepted connection watched: the first bytes the
// HTTP server reads are checked for a TLS ClientHello, an SSH banner or other bytes
// that cannot start an HTTP request. Nothing is read ahead: the sensor looks at what
// the server itself reads, so it neither delays nor consumes a byte.
func (s *Sensor) WrapListener(ln net.Listener) net.Listener {
	if len(s.conn) == 0 {
		return ln
	}
	return &listener{Listener: ln, s: s}
}

type listener struct {
	net.Listener
	s *Sensor
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	return &conn{Watched: netconn.Watched{Conn: c}, s: l.s}, nil
}

// conn sees the first bytes of a connection. It keeps the TCP connection's ReadFrom
// (sendfile) and CloseWrite, which net/http looks for.
type conn struct {
	netconn.Watched
	s    *Sensor
	done bool
	n    int
	head [4]byte
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.done {
		c.n += copy(c.head[c.n:], p[:n])
		if c.n == len(c.head) || err != nil || (c.n > 0 && c.head[0] != 'S' && c.head[0] != 0x16) {
			c.done = true
			if c.n > 0 {
				c.s.checkHead(c.head[:c.n], p[:n], c.RemoteAddr())
			}
		}
	}
	return n, err
}

// checkHead classifies a connection's first bytes; sample is the first read, shown
// (quoted) as the event's target.
func (s *Sensor) checkHead(head, sample []byte, remote net.Addr) {
	var check string
	switch {
	case len(head) >= 2 && head[0] == 0x16 && head[1] == 0x03:
		check = "tls"
	case len(head) >= 4 && string(head) == "SSH-":
		check = "ssh"
	case head[0] == '\r' || head[0] == '\n' || ('A' <= head[0] && head[0] <= 'Z'):
		return // an HTTP method token (RFC 9112 allows a leading empty line)
	default:
		check = "binary"
	}
	ri, ok := s.conn[check]
	if !ok {
		return
	}
	if len(sample) > 64 {
		sample = sample[:64]
	}
	src := ""
	if remote != nil {
		src = remote.String()
	}
	now := time.Now()
	s.record(ri, sourceOf(src), now, Event{Time: now, Target: strconv.QuoteToASCII(string(sample))})
}
