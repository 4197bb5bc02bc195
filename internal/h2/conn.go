package h2

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2/hpack"
)

// The read deadline in force.
const (
	deadlinePreface = iota
	deadlineNone
	deadlineIdle
	deadlineClosing
)

// connError ends the connection with a GOAWAY of code.
type connError struct {
	code uint32
	why  string
}

func (e connError) Error() string { return fmt.Sprintf("h2: connection error %d: %s", e.code, e.why) }

// conn is one HTTP/2 connection.
type conn struct {
	s      *Server
	nc     net.Conn // the *tls.Conn
	sock   net.Conn
	hold   holder // nil when sock cannot gather writes
	base   context.Context
	cs     tls.ConnectionState
	remote string

	// The reader's own.
	br          *bufio.Reader
	fr          frameReader
	dec         *hpack.Decoder
	fields      []hpack.HeaderField
	fieldsSize  int
	fieldsErr   bool
	maxStreamID uint32
	contStream  uint32 // the stream whose header block continues, 0 for none
	contEnd     bool   // that block's HEADERS had END_STREAM
	block       []byte
	busy        atomic.Bool

	// mu guards what follows, and cond waits for flow-control window.
	mu             sync.Mutex
	cond           sync.Cond
	streams        map[uint32]*stream
	recvWindow     int64 // what the client may still send on the connection
	deadline       int   // the read deadline in force
	sendWindow     int64
	peerWindow     int64 // SETTINGS_INITIAL_WINDOW_SIZE of the client
	peerMaxFrame   int
	enc            *hpack.Encoder
	encBuf         blockBuffer
	wbuf, spare    []byte
	closed         bool
	goingAway      bool
	recvUnacked    int64 // body bytes handlers read, not yet given back
	running        int   // handlers not yet returned
	resetScore     int   // client resets of unanswered streams, less answers
	werr           error
	pendingStreams []*stream  // inline responses waiting for window
	fmu            sync.Mutex // one flush at a time
}

type holder interface {
	Hold()
	Release() error
}

// blockBuffer collects one encoded header block.
type blockBuffer struct{ b []byte }

func (w *blockBuffer) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func newConn(s *Server, base context.Context, nc net.Conn, cs tls.ConnectionState, sock net.Conn) *conn {
	c := &conn{s: s, nc: nc, cs: cs, sock: sock, base: base, remote: sock.RemoteAddr().String(),
		streams: map[uint32]*stream{}, sendWindow: defaultWindow, peerWindow: defaultWindow,
		peerMaxFrame: minMaxFrameSize, recvWindow: connWindow}
	c.hold, _ = sock.(holder)
	c.cond.L = &c.mu
	c.br = bufio.NewReaderSize(nc, 32<<10)
	c.fr = frameReader{r: c.br, max: minMaxFrameSize}
	c.dec = hpack.NewDecoder(4096, c.emit)
	c.dec.SetMaxStringLength(2 * c.maxBlock()) // a field past MaxHeaderBytes gets 431, not a connection error
	c.enc = hpack.NewEncoder(&c.encBuf)
	return c
}

func (c *conn) emit(f hpack.HeaderField) {
	c.fieldsSize += len(f.Name) + len(f.Value) + 32
	if c.fieldsSize > c.s.maxHeaderBytes() {
		c.fieldsErr = true
		return
	}
	c.fields = append(c.fields, f)
}

// serve reads and handles frames until the connection ends, then cancels what
// is left.
func (c *conn) serve() {
	defer c.finish()
	d := c.s.PrefaceTimeout
	if d <= 0 {
		d = prefaceTimeout
	}
	c.nc.SetReadDeadline(time.Now().Add(d))
	var p [len(preface)]byte
	if _, err := io.ReadFull(c.br, p[:]); err != nil || string(p[:]) != preface {
		c.s.logf("h2: bad connection preface", "remote", c.remote, "err", err)
		return
	}
	c.write(func(b []byte) []byte {
		b = appendSettings(b, false,
			[2]uint32{settingMaxConcurrentStreams, maxConcurrentStreams},
			[2]uint32{settingInitialWindowSize, streamWindow},
			[2]uint32{settingMaxFrameSize, minMaxFrameSize},
			[2]uint32{settingMaxHeaderListSize, uint32(c.s.maxHeaderBytes())},
			[2]uint32{settingEnablePush, 0})
		return appendWindowUpdate(b, 0, connWindow-defaultWindow)
	})
	first := true
	for {
		if !c.frameBuffered() {
			c.busy.Store(false)
			if c.flush() != nil {
				return
			}
			c.setIdleDeadline(first)
		}
		h, payload, err := c.fr.next()
		c.busy.Store(true)
		if err != nil {
			c.readFailed(h, err)
			return
		}
		if first {
			if h.typ != frameSettings || h.has(flagAck) {
				c.fail(connError{errProtocol, "the first frame is not SETTINGS"})
				return
			}
			first = false
		}
		if err := c.handle(h, payload); err != nil {
			var ce connError
			if errors.As(err, &ce) {
				c.fail(ce)
			}
			return
		}
		// Answers (RST_STREAM, PING and SETTINGS acks) to a client that
		// sends without reading go out before they pile up.
		if c.limitPending() != nil {
			return
		}
	}
}

// frameBuffered reports whether a whole frame is buffered: if not, the next
// read may block, and what handlers and the reader wrote must go out first.
func (c *conn) frameBuffered() bool {
	n := c.br.Buffered()
	if n < frameHeaderLen {
		return false
	}
	b, _ := c.br.Peek(frameHeaderLen)
	return n >= frameHeaderLen+int(parseFrameHeader(b).length)
}

// setIdleDeadline gives a connection with no open stream IdleTimeout to send
// its next frame, and one with streams no deadline (before its SETTINGS, the
// preface's still holds). The reader calls it before it waits, and a handler
// as it returns: the reader may be waiting already.
func (c *conn) setIdleDeadline(first bool) {
	if first {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	idle := len(c.streams) == 0 && c.running == 0
	if c.deadline == deadlineClosing {
		return // closeSocket's deadline wakes the reader
	}
	if d := c.s.IdleTimeout; idle && d > 0 {
		c.deadline = deadlineIdle
		c.nc.SetReadDeadline(time.Now().Add(d))
	} else if c.deadline != deadlineNone {
		c.deadline = deadlineNone
		c.nc.SetReadDeadline(time.Time{})
	}
}

func (c *conn) readFailed(h frameHeader, err error) {
	switch {
	case err == errFrameTooLarge:
		c.fail(connError{errFrameSize, fmt.Sprintf("frame of %d bytes", h.length)})
	case errors.Is(err, os.ErrDeadlineExceeded) && c.idleExpired():
		c.fail(connError{errNo, "idle timeout"})
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), c.closing():
	default:
		c.s.logf("h2: reading a frame", "remote", c.remote, "err", err)
	}
}

func (c *conn) closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline == deadlineClosing
}

func (c *conn) idleExpired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline == deadlineIdle
}

// fail sends a GOAWAY for a connection error; the connection then closes.
func (c *conn) fail(e connError) {
	if e.code != errNo {
		c.s.logf("h2: closing the connection", "remote", c.remote, "code", e.code, "why", e.why)
	}
	c.mu.Lock()
	last := c.maxStreamID
	c.goingAway = true
	c.mu.Unlock()
	c.write(func(b []byte) []byte { return appendGoAway(b, last, e.code, "") })
	c.flush()
}

// goAway starts a graceful close: no new stream, and the connection closes
// once the open ones are answered.
func (c *conn) goAway(code uint32) {
	c.mu.Lock()
	if c.goingAway || c.closed {
		c.mu.Unlock()
		return
	}
	c.goingAway = true
	last := c.maxStreamID
	idle := len(c.streams) == 0 && c.running == 0
	c.wbuf = appendGoAway(c.wbuf, last, code, "")
	c.mu.Unlock()
	c.flush()
	if idle {
		c.closeSocket()
	}
}

// closeSocket ends the reader's wait; serve's finish does the rest. A socket
// that gathers writes may deliver them after Close: the read deadline is what
// ends the reader's wait then.
func (c *conn) closeSocket() {
	c.flush()
	c.mu.Lock()
	c.deadline = deadlineClosing
	c.sock.SetReadDeadline(time.Now())
	c.mu.Unlock()
	c.sock.Close()
}

// finish ends every stream still open and closes the connection.
func (c *conn) finish() {
	c.mu.Lock()
	c.closed = true
	for id, st := range c.streams {
		st.abort(errClientGone)
		delete(c.streams, id)
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	c.nc.Close()
	c.sock.Close()
}

// write appends frames to the write buffer.
func (c *conn) write(f func([]byte) []byte) {
	c.mu.Lock()
	if !c.closed {
		c.wbuf = f(c.wbuf)
	}
	c.mu.Unlock()
}

// flushFromHandler has what a handler wrote sent: now when the reader is
// waiting for the client, else by the reader once it has handled what it has.
func (c *conn) flushFromHandler() {
	if !c.busy.Load() {
		c.flush()
	}
}

// flush writes the buffered frames.
func (c *conn) flush() error {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	c.mu.Lock()
	b := c.wbuf
	if len(b) == 0 || c.werr != nil {
		err := c.werr
		c.mu.Unlock()
		return err
	}
	c.wbuf, c.spare = c.spare[:0], nil
	c.mu.Unlock()
	if c.hold != nil {
		c.hold.Hold()
	}
	_, err := c.nc.Write(b)
	if c.hold != nil {
		if rerr := c.hold.Release(); err == nil {
			err = rerr
		}
	}
	c.mu.Lock()
	if cap(b) <= maxKeptBuffer {
		c.spare = b[:0]
	}
	if err != nil && c.werr == nil {
		c.werr = err
		c.cond.Broadcast()
	}
	c.mu.Unlock()
	if err != nil {
		c.sock.Close()
	}
	return err
}
