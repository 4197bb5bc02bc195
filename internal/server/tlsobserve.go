package server

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
)

// TLSObserver is shown every TLS handshake: the telescope's HTTP sensor tags a
// ClientHello that names no site, and a handshake that never completes, as
// unsolicited (scanners sweep port 443 by address, and other protocols knock on
// it). A connection is shown once: TLSFailed only for one that sent no ClientHello
// (a visitor whose browser then refuses the certificate is not a scanner).
type TLSObserver interface {
	// TLSHello sees a ClientHello; known reports whether a site answers to a name.
	TLSHello(hello *tls.ClientHelloInfo, known func(name string) bool)
	// TLSFailed sees a connection that closed without a ClientHello.
	TLSFailed(c net.Conn, err error)
}

// errNoHello is what TLSFailed is told: net/http keeps the handshake's own error
// to its log.
var errNoHello = errors.New("tls: connection closed without a ClientHello")

// tlsConfigs are the TLS configs of the HTTPS and HTTP/3 listeners, and what follows
// their connections' handshakes for the observer.
type tlsConfigs struct {
	tcp, quic *tls.Config
	obs       TLSObserver
	mu        sync.Mutex
	// pending holds the TLS connections accepted and not yet known to have
	// completed a handshake (a first request) or to have been judged by TLSHello.
	pending map[net.Conn]bool
}

func (s *Server) newTLSConfigs() *tlsConfigs {
	base := s.certs.TLSConfig()
	tc := &tlsConfigs{tcp: base, quic: base, obs: s.tlsObserver, pending: map[net.Conn]bool{}}
	if tc.obs == nil {
		return tc
	}
	observe := func(quic bool) *tls.Config {
		c := base.Clone()
		next := base.GetConfigForClient
		c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			tc.obs.TLSHello(hello, s.certs.Named)
			if !quic {
				// Forgotten when the handshake ends (handshakeDone) or the
				// connection closes (connState).
				tc.mu.Lock()
				tc.pending[hello.Conn] = true
				tc.mu.Unlock()
			}
			if next != nil {
				return next(hello)
			}
			return nil, nil
		}
		return c
	}
	tc.tcp, tc.quic = observe(false), observe(true)
	return tc
}

// connState follows a TLS listener's connections for the observer: one that closes
// with no request and no ClientHello never began a TLS handshake.
func (tc *tlsConfigs) connState(c net.Conn, st http.ConnState) {
	if tc.obs == nil {
		return
	}
	raw := c
	if t, ok := c.(*tls.Conn); ok {
		raw = t.NetConn()
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	switch st {
	case http.StateNew:
		tc.pending[raw] = false
	case http.StateActive:
		delete(tc.pending, raw)
	case http.StateClosed, http.StateHijacked:
		hello, ok := tc.pending[raw]
		delete(tc.pending, raw)
		if ok && !hello {
			tc.obs.TLSFailed(c, errNoHello)
		}
	}
}

// handshakeDone follows the fast path's TLS handshakes for the observer: one that
// failed with no ClientHello never began a TLS handshake.
func (tc *tlsConfigs) handshakeDone(c net.Conn, err error) {
	if tc.obs == nil {
		return
	}
	tc.mu.Lock()
	hello := tc.pending[c]
	delete(tc.pending, c)
	tc.mu.Unlock()
	if err != nil && !hello {
		tc.obs.TLSFailed(c, errNoHello)
	}
}
