package httpsensor

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The TLS listeners show the sensor each connection's handshake: scanners sweep
// port 443 by IP address, so a ClientHello naming no server, or a server no site
// answers to, is unsolicited like an HTTP request for an unknown Host; and a
// handshake that fails is a scanner or another protocol knocking on the port.
//
// One connection is one event: a listener calls TLSHandshakeFailed only for a
// connection whose ClientHello got no verdict.

// KnownName reports whether a site answers to name (lower case, no trailing dot)
// on a TLS listener; the listener's certificate lookup is the natural one.
type KnownName func(name string) bool

// ClientHello classifies a TLS ClientHello; a TLS listener calls it from
// tls.Config.GetConfigForClient, before the certificate is chosen. A hello with
// no server name is legit when a site names the IP address it dialed (the
// certificate such a client gets), unsolicited otherwise.
func (s *Sensor) ClientHello(hello *tls.ClientHelloInfo, known KnownName) Verdict {
	if len(s.tls) == 0 || hello == nil {
		return Verdict{}
	}
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	var check string
	switch {
	case name == "":
		if local := localIP(hello.Conn); local.IsValid() && known(local.String()) {
			return Verdict{}
		}
		check = "no-sni"
	case !known(name):
		check = "unknown-sni"
	default:
		return Verdict{}
	}
	ri, ok := s.tls[check]
	if !ok {
		return Verdict{}
	}
	target := "(no server name)"
	if name != "" {
		target = strconv.QuoteToASCII(name)
	}
	return s.recordTLS(ri, hello.Conn, name, target)
}

// TLSHandshakeFailed records a server handshake that ended in err. The server's
// own stop (a closed listener, a cancelled context) is not the client's doing
// and is not recorded.
func (s *Sensor) TLSHandshakeFailed(c net.Conn, err error) Verdict {
	ri, ok := s.tls["handshake-failed"]
	if !ok || err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, context.Canceled) {
		return Verdict{}
	}
	return s.recordTLS(ri, c, "", err.Error())
}

func (s *Sensor) recordTLS(ri int, c net.Conn, name, target string) Verdict {
	src := ""
	if c != nil && c.RemoteAddr() != nil {
		src = c.RemoteAddr().String()
	}
	now := time.Now()
	s.record(ri, sourceOf(src), now, Event{Time: now, Target: target, Host: name})
	return Verdict{Category: s.rules[ri].Category, Rule: s.rules[ri].Name}
}

func localIP(c net.Conn) netip.Addr {
	if c == nil || c.LocalAddr() == nil {
		return netip.Addr{}
	}
	if ap, err := netip.ParseAddrPort(c.LocalAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
