package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"

	"gantry/internal/config"
	"gantry/internal/h3"
)

// listenQUIC binds, for each TLS listener, the UDP socket of the same address that
// HTTP/3 is served on, while gantry may still bind privileged ports. The datagram
// sockets the service manager passed (inherited) are served as they are, and a
// TLS listener whose port one of them holds gets no other.
func (s *Server) listenQUIC(cfg *config.Config, inherited []net.PacketConn) error {
	s.quicConns = append(s.quicConns, inherited...)
	if !cfg.Server.HTTP3On() {
		return nil
	}
	var lc net.ListenConfig
	for _, ln := range s.tlsListeners {
		if slices.ContainsFunc(inherited, func(pc net.PacketConn) bool { return holds(pc.LocalAddr(), ln.Addr()) }) {
			continue
		}
		addr := ln.Addr().String()
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			return fmt.Errorf("http3 on %s: %w (is another program using this UDP port? set [server] http3 = false to serve without HTTP/3)", addr, err)
		}
		s.quicConns = append(s.quicConns, pc)
	}
	return nil
}

// holds reports whether the UDP socket bound to u takes the datagrams of the TCP
// listener's address t: same port, and the same address or a wildcard.
func holds(u, t net.Addr) bool {
	ua, ok1 := u.(*net.UDPAddr)
	ta, ok2 := t.(*net.TCPAddr)
	return ok1 && ok2 && ua.Port == ta.Port && (ua.IP.IsUnspecified() || ua.IP.Equal(ta.IP))
}

// serveQUIC serves HTTP/3 on the sockets listenQUIC bound, with the TLS
// listeners' certificates and handler. Called with s.mu held.
func (s *Server) serveQUIC(cfg config.Server, tc *tlsConfigs) {
	for _, pc := range s.quicConns {
		opts := h3.Options{
			Handler: tlsHandler{s}, TLSConfig: tc.quic, Conn: pc,
			Logger: s.log.With("component", "http3"), MaxHeaderBytes: int(cfg.MaxHeader),
			IdleTimeout: cfg.IdleTimeout.D(), ReadHeaderTimeout: cfg.ReadHeaderTimeout.D(),
		}
		if s.gate != nil {
			opts.Admit, opts.Track = s.gate.Admit, s.gate.Track
		}
		hs, err := h3.Listen(context.Background(), "", opts)
		if err != nil {
			s.log.Error("HTTP/3 listener not started", "addr", pc.LocalAddr().String(), "err", err)
			pc.Close()
			continue
		}
		s.h3Servers = append(s.h3Servers, hs)
		go func() {
			if err := hs.Serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("HTTP/3 listener stopped", "addr", hs.Addr().String(), "err", err)
			}
		}()
	}
	s.quicConns = nil
}

// altSvc announces HTTP/3 on TLS responses of the listener at addr, when it is
// served there.
func (s *Server) altSvc(addr net.Addr, h http.Handler) http.Handler {
	for _, hs := range s.h3Servers {
		if ta, ok := addr.(*net.TCPAddr); ok && hs.Port() == ta.Port {
			return h3.AltSvc(hs.Port(), h)
		}
	}
	return h
}

// altSvcHeader is the Alt-Svc value altSvc adds for the listener at addr, as a
// header slice the fast path may share between responses (its capacity is its
// length: an append copies), nil when HTTP/3 is not served there.
func (s *Server) altSvcHeader(addr net.Addr) []string {
	for _, hs := range s.h3Servers {
		if ta, ok := addr.(*net.TCPAddr); ok && hs.Port() == ta.Port {
			v := h3.AltSvcValue(hs.Port())
			return []string{v}[:1:1]
		}
	}
	return nil
}
