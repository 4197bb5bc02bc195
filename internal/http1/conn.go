package http1

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"gantry/internal/sendtimeout"
)

const (
	stateNew    int32 = iota // accepted, no request read yet
	stateActive              // reading or answering a request
	stateIdle                // waiting for a later request's first byte
	stateParked              // waiting in the parker, with no goroutine
	stateClosed              // closed by Shutdown or the parker
)

// newIdleAfter is how long a new connection that sent nothing may delay Shutdown,
// as net/http waits for one in StateNew: its request may be on the way.
const newIdleAfter = 5 * time.Second

// conn is one connection on the fast path. Between requests it holds only what
// identifies it: the request state (st) is pooled, and past Server.ParkAfter the
// parker holds it without a goroutine.
type conn struct {
	s    *Server
	nc   net.Conn // the *tls.Conn on a TLS listener
	sock net.Conn // the accepted connection, which Shutdown closes
	tls  *tls.Conn
	// coalesce is sock on a TLS listener: it gathers an HTTP/2 connection's writes
	coalesce *coalesceConn
	cs       *tls.ConnectionState
	raw      syscall.RawConn // the TCP socket, when reachable, for MSG_MORE and idle waits
	remote   string
	state    atomic.Int32
	created  time.Duration // mono
	st       *reqState     // nil while waiting with nothing buffered
	r, w     int           // unread bytes are st.buf[r:w]

	// readIdle bound once, and what it read: an idle wait costs no allocation.
	onReadable func(uintptr) bool
	readErr    error
	idleUntil  time.Duration // mono: the idle wait's deadline, 0 for none
	resumed    bool          // started by the parker: idleUntil still holds
	moved      bool          // started to wait out ParkAfter on a new goroutine
	one        [1]byte       // a TLS connection's idle read
	park       parkLink
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s}
	if s.TLSConfig != nil {
		c.coalesce = newCoalesceConn(nc)
		c.sock = c.coalesce
		c.tls = tls.Server(c.coalesce, s.TLSConfig)
		c.nc = c.tls
		c.remote = nc.RemoteAddr().String()
		if sc, ok := rawConn(nc).(syscall.Conn); ok {
			c.raw, _ = sc.SyscallConn()
		}
	} else {
		c.setConn(nc)
	}
	c.state.Store(stateNew)
	c.created = mono(time.Now())
	if c.raw != nil && c.tls == nil {
		// A TLS connection may hold decrypted bytes: only its own Read knows.
		c.onReadable = c.readIdle
	}
	return c
}

// setConn makes nc the plain connection's socket: at accept, and when a
// connection released by the parker wakes.
func (c *conn) setConn(nc net.Conn) {
	c.nc, c.sock = nc, nc
	c.remote = nc.RemoteAddr().String()
	c.raw = nil
	if sc, ok := rawConn(nc).(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
}

// epoch is the origin of a connection's times: kept as the monotonic Duration
// since it, they take a third of a time.Time.
var epoch = time.Now()

// mono is t as a Duration since epoch, 0 for the zero Time.
func mono(t time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	return t.Sub(epoch)
}

// fromMono is mono's inverse.
func fromMono(d time.Duration) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return epoch.Add(d)
}

// connContext is the connection as the context net/http gives each request:
// gateways read the local address (SERVER_ADDR, SERVER_PORT) from it. Being the
// connection, it costs no allocation.
type connContext conn

func (*connContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*connContext) Done() <-chan struct{}       { return nil }
func (*connContext) Err() error                  { return nil }

func (x *connContext) Value(key any) any {
	switch key {
	case http.ServerContextKey:
		return x.s.Fallback
	case http.LocalAddrContextKey:
		return x.sock.LocalAddr()
	}
	return nil
}

func (*connContext) String() string { return "http1.connContext" }

var _ context.Context = (*connContext)(nil)

// serve runs the connection's loop until it closes, is handed off or is parked;
// resumed is set when the parker starts it again.
func (c *conn) serve(resumed bool) {
	if resumed && c.park.released && !c.attach() {
		return
	}
	handed, parked := false, false
	defer func() {
		if parked {
			return // the parker has it, and may have started it again
		}
		panicked := false
		if v := recover(); v != nil {
			panicked = true
			if v != http.ErrAbortHandler && c.s.Logger != nil {
				c.s.Logger.Error("http1: panic serving a request", "remote", c.remote, "panic", v, "stack", string(debug.Stack()))
			}
		}
		c.stopWatch()
		if c.st != nil {
			if panicked {
				c.st = nil // in whatever state the handler left it: not reused
			} else {
				c.release()
			}
		}
		if !handed {
			c.nc.Close()
		}
		c.s.track(c, false)
	}()
	c.resumed = resumed
	if !resumed && c.tls != nil {
		switch c.handshake() {
		case handshakeFailed:
			return
		case handshakeOther:
			handed = true
			return
		case handshakeH2:
			// Active: Shutdown waits for it, H2 having sent it a GOAWAY.
			c.state.Store(stateActive)
			c.s.H2.ServeConn((*connContext)(c), c.tls, c.coalesce)
			return
		}
	}
	first := !resumed
	for {
		n, v, err := c.readHead(first)
		first = false
		if err == errParked {
			parked = true
			return
		}
		if err != nil {
			if errors.Is(err, io.EOF) && c.w > c.r {
				// A partial request then EOF: net/http decides what to answer.
				v = handoff
			} else {
				return
			}
		}
		if v == handoff || !c.fill() {
			c.handoff()
			handed = true
			return
		}
		served, reuse := c.serveOne()
		if !served {
			c.handoff()
			handed = true
			return
		}
		c.r += n
		if !reuse || c.s.closing.Load() {
			return
		}
	}
}

// handoff gives the connection to net/http with the bytes read and not used,
// copied: the buffer goes back to the pool.
func (c *conn) handoff() {
	c.s.handoff(sendtimeout.Wrap(c.nc, c.s.WriteTimeout), bytes.Clone(c.st.buf[c.r:c.w]), c.cs)
}

// extendWrite gives the next write a full WriteTimeout: the timeout is for a
// client that stops reading (nginx's send_timeout), not for the whole response, so
// a long download or stream that keeps flowing is never cut.
func (c *conn) extendWrite() {
	if d := c.s.WriteTimeout; d > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(d))
	}
}

// readHead reads until st.buf[r:] holds a complete eligible head (ready, its
// length) or is known to be for net/http (handoff). It returns errParked when
// the connection went to the parker.
func (c *conn) readHead(first bool) (int, verdict, error) {
	maxHead := bufSize
	if m := c.s.MaxHeaderBytes; m > 0 && m < maxHead {
		maxHead = m
	}
	headerDeadline := false
	for {
		if c.w > c.r {
			st := c.st
			n, v := parse(st.buf[c.r:c.w], &st.head, maxHead)
			if v != needMore {
				return n, v, nil
			}
			if !headerDeadline {
				if d := c.s.ReadHeaderTimeout; d > 0 {
					c.nc.SetReadDeadline(time.Now().Add(d))
				} else if c.onReadable != nil && !first {
					// The deadline left may be an idle wait's ParkAfter: the
					// head has the idle timeout, as it would have had without.
					c.nc.SetReadDeadline(fromMono(c.idleUntil))
				}
				headerDeadline = true
			}
			if c.w == len(st.buf) {
				copy(st.buf, st.buf[c.r:c.w])
				c.w -= c.r
				c.r = 0
			}
		} else {
			c.r, c.w = 0, 0
			d := c.s.IdleTimeout
			if first || d == 0 {
				d = c.s.ReadHeaderTimeout
			}
			if !first && c.onReadable != nil {
				if err := c.waitIdle(d); err != nil {
					return 0, 0, err
				}
				continue
			}
			if d > 0 {
				c.nc.SetReadDeadline(time.Now().Add(d))
			}
			if !first && !c.state.CompareAndSwap(stateActive, stateIdle) {
				return 0, 0, net.ErrClosed
			}
			if !first && c.tls != nil {
				if err := c.waitTLS(); err != nil {
					return 0, 0, err
				}
				continue
			}
		}
		if c.st == nil {
			c.acquire()
		}
		m, err := c.nc.Read(c.st.buf[c.w:])
		if st := c.state.Load(); st != stateActive && !c.state.CompareAndSwap(st, stateActive) {
			return 0, 0, net.ErrClosed
		}
		c.w += m
		if err != nil {
			return 0, 0, err
		}
	}
}

// fill sets up the state's Request from its head, reusing the strings seen before.
// It reports false for a request that must go to net/http after all (a repeated
// header field).
func (c *conn) fill() bool {
	st := c.st
	h := &st.head
	clear(st.hdr)
	for i := 0; i < h.nfields; i++ {
		f := &h.fields[i]
		key := st.canonicalKey(f.name)
		if key == "Host" {
			continue // net/http's server moves it to Request.Host
		}
		if _, dup := st.hdr[key]; dup {
			// net/http would join or refuse repeats; keep one meaning by not
			// taking them here.
			return false
		}
		st.vals[i] = st.str(f.value)
		st.hdr[key] = st.vals[i : i+1 : i+1]
	}
	r := &st.req
	if string(h.method) == "GET" {
		r.Method = http.MethodGet
	} else {
		r.Method = http.MethodHead
	}
	target := st.str(h.target)
	r.RequestURI = target
	st.url = url.URL{Path: target}
	for i := 0; i < len(target); i++ {
		if target[i] == '?' {
			st.url.Path, st.url.RawQuery = st.str(h.target[:i]), target[i+1:]
			st.url.ForceQuery = i+1 == len(target)
			break
		}
	}
	r.URL = &st.url
	if h.minor == 1 {
		r.Proto, r.ProtoMinor = "HTTP/1.1", 1
	} else {
		r.Proto, r.ProtoMinor = "HTTP/1.0", 0
	}
	r.ProtoMajor = 1
	r.Header = st.hdr
	r.Body = http.NoBody
	r.ContentLength = 0
	r.Host = st.str(h.host)
	// As net/http's shouldClose: HTTP/1.0 closes unless keep-alive is asked.
	r.Close = h.close || (h.minor == 0 && !h.keep)
	return true
}

// canonicalKey is textproto.CanonicalMIMEHeaderKey for a valid token, interned.
func (st *reqState) canonicalKey(name []byte) string {
	var tmp [64]byte
	if len(name) > len(tmp) {
		return http.CanonicalHeaderKey(string(name))
	}
	b := tmp[:len(name)]
	upper := true
	for i, ch := range name {
		if upper && 'a' <= ch && ch <= 'z' {
			ch -= 'a' - 'A'
		} else if !upper && 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		b[i] = ch
		upper = ch == '-'
	}
	return st.str(b)
}

// serveOne answers the request in the state, or reports served false (nothing
// written) when the Handler declines it; reuse tells whether the connection may
// carry another request.
func (c *conn) serveOne() (served, reuse bool) {
	st := c.st
	w := &st.rw
	w.reset(&st.req, st.head.keep)
	served = c.s.Handler.ServeFast(w, &st.req)
	gone := c.stopWatch()
	if !served {
		return false, false
	}
	return true, w.finish() && !gone
}

// ReadFrom sends src's bytes after what is buffered: with sendfile(2) when the
// connection is a *net.TCPConn and src an *os.File (or an io.LimitedReader of one).
func (w *ResponseWriter) ReadFrom(src io.Reader) (int64, error) {
	direct, n0, err := w.beginCopy(src)
	if err != nil {
		return n0, err
	}
	if !direct {
		var n int64
		if w.req.Method == http.MethodHead {
			n, err = io.Copy(io.Discard, src)
		} else {
			n, err = io.Copy(writerOnly{w}, src)
		}
		return n0 + n, err
	}
	if n, err, ok := w.sendFile(src); ok {
		return n0 + n, err
	}
	if err := w.flushMore(); err != nil {
		return n0, err
	}
	n, err := sendtimeout.Copy(w.c.nc, src, w.c.s.WriteTimeout)
	w.written += n
	if err != nil {
		w.err = err
		w.closeAfter = true
	}
	return n0 + n, err
}

func (w *ResponseWriter) flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.out) == 0 {
		return nil
	}
	_, err := sendtimeout.Write(w.c.nc, w.out, w.c.s.WriteTimeout)
	w.out = w.out[:0]
	if err != nil {
		w.err = err
		w.closeAfter = true
	}
	return err
}

var _ io.ReaderFrom = (*ResponseWriter)(nil)
var _ http.ResponseWriter = (*ResponseWriter)(nil)

// flushMore writes the buffered bytes with MSG_MORE, the per-send form of
// TCP_CORK (nginx's tcp_nopush): the kernel holds them back to share packets with
// the sendfile(2) that follows, so the client gets head and body in one train
// rather than a small segment first.
func (w *ResponseWriter) flushMore() error {
	rc := w.c.raw
	if rc == nil || len(w.out) == 0 {
		return w.flush()
	}
	out := w.out
	var serr error
	w.c.extendWrite()
	err := rc.Write(func(fd uintptr) bool {
		for len(out) > 0 {
			n, err := syscall.SendmsgN(int(fd), out, nil, nil, syscall.MSG_MORE|syscall.MSG_NOSIGNAL)
			if err == syscall.EINTR {
				continue
			}
			if err == syscall.EAGAIN {
				return false
			}
			if err != nil {
				serr = err
				return true
			}
			out = out[n:]
		}
		return true
	})
	w.out = w.out[:0]
	if err == nil {
		err = serr
	}
	if err != nil {
		w.err = err
		w.closeAfter = true
	}
	return err
}

// rawConn looks through wrappers (a listener's instrumentation) that expose the
// connection they wrap by the NetConn convention, but never through a TLS
// connection: bytes written underneath it would reach the client unencrypted.
func rawConn(nc net.Conn) net.Conn {
	for {
		if _, isTLS := nc.(*tls.Conn); isTLS {
			return nc
		}
		u, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return nc
		}
		nc = u.NetConn()
	}
}
