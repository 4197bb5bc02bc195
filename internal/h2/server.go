// Package h2 is gantry's HTTP/2 server for TLS connections that negotiated
// "h2". One goroutine per connection reads and answers frames; handlers run on
// goroutines of a shared pool (their stacks stay grown between requests), and
// the frames of every stream go out through one buffer, written when the reader
// has no complete frame left to handle: one write for many responses.
package h2

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Limits a client cannot change.
const (
	maxConcurrentStreams = 250
	// streamWindow and connWindow bound the request body bytes buffered for
	// handlers: per stream and, for all streams together, per connection.
	streamWindow = 256 << 10
	connWindow   = 1 << 20
	// maxResetScore is how far client resets of unfinished streams may outrun
	// finished streams before the connection is dropped (rapid reset).
	maxResetScore = 200
	// maxPendingWrite is the most a connection buffers for a client that does
	// not read: past it, the writer waits for the socket.
	maxPendingWrite = 64 << 10
	// maxPendingInline bounds the inline answers a connection holds for a
	// client that grants too little window.
	maxPendingInline = 64 << 10
	maxKeptBuffer    = 16 << 10
	prefaceTimeout   = 10 * time.Second
)

// Server serves HTTP/2 connections.
type Server struct {
	Handler http.Handler
	// Inline, when set, may answer a bodiless request on the connection's
	// reader goroutine and return true, or return false having written nothing
	// (headers it set are dropped). It must never block: its ResponseWriter's
	// MemoryOnly says so to a cache that would otherwise read the disk. What
	// does not fit the client's window is kept until the client grants more.
	Inline func(w http.ResponseWriter, r *http.Request) bool
	// IdleTimeout closes a connection with no open stream (zero: never).
	IdleTimeout time.Duration
	// ReadTimeout bounds reading a request's body: past it, the handler's
	// reads fail (zero: never).
	ReadTimeout time.Duration
	// WriteTimeout bounds a handler's wait for flow-control window: past it,
	// the stream is reset (zero: never).
	WriteTimeout time.Duration
	// PrefaceTimeout bounds the wait for the client's preface (default 10s).
	PrefaceTimeout time.Duration
	// MaxHeaderBytes bounds a request's header list (names, values and 32
	// bytes per field, as SETTINGS_MAX_HEADER_LIST_SIZE counts); default
	// http.DefaultMaxHeaderBytes. Longer requests get 431.
	MaxHeaderBytes int
	Logger         *slog.Logger

	mu      sync.Mutex
	conns   map[*conn]struct{}
	closing bool
}

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return http.DefaultMaxHeaderBytes
}

// ServeConn serves tc, whose handshake negotiated "h2", until it closes. base
// is the parent of every request's context (its values: the server, the local
// address). sock is the socket under tc: when it has Hold and Release, the TLS
// records of one batch of frames go out in one write.
func (s *Server) ServeConn(base context.Context, tc *tls.Conn, sock net.Conn) {
	c := newConn(s, base, tc, tc.ConnectionState(), sock)
	if !s.track(c, true) {
		tc.Close()
		return
	}
	defer s.track(c, false)
	c.serve()
}

func (s *Server) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, c)
		return true
	}
	if s.closing {
		return false
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return true
}

// Shutdown sends every connection a GOAWAY: each closes once its open streams
// are answered. It does not wait; the caller waits for ServeConn to return.
func (s *Server) Shutdown() {
	s.mu.Lock()
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		// A client that reads nothing holds its connection's writes until
		// the send timeout: the others' GOAWAY must not wait for it.
		go c.goAway(errNo)
	}
}

func (s *Server) logf(msg string, args ...any) {
	if s.Logger != nil {
		s.Logger.Debug(msg, args...)
	}
}
