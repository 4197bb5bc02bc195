package h2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

var (
	errStreamReset = errors.New("h2: stream reset")
	errClientGone  = errors.New("h2: client disconnected")
)

// stream is one request and its response. Its fields are guarded by c.mu, but
// for the reader's own (declared, received) and localDone.
type stream struct {
	c  *conn
	id uint32

	sendWindow  int64
	recvWindow  int64
	recvUnacked int64
	declared    int64 // the request's content-length, -1 for none
	received    int64
	remoteDone  bool // END_STREAM received
	reset       bool
	localDone   atomic.Bool // the response ended
	body        *body
	cancel      context.CancelFunc
	readTimer   *time.Timer // Server.ReadTimeout for the body

	// pending is a response an inline handler left for more window.
	pending    []byte
	pendingEnd bool
}

// abort ends the stream's request: its context, its body.
func (st *stream) abort(err error) {
	st.reset = true
	if st.readTimer != nil {
		st.readTimer.Stop()
	}
	if st.cancel != nil {
		st.cancel()
	}
	if st.body != nil {
		st.body.failLocked(err)
	}
	st.pending = nil
}

// remoteEnded marks the request complete; a stream whose response is sent too
// is done.
func (c *conn) remoteEnded(st *stream) {
	c.mu.Lock()
	st.remoteDone = true
	if st.readTimer != nil {
		st.readTimer.Stop()
	}
	if st.body != nil {
		st.body.failLocked(io.EOF)
	}
	if st.localDone.Load() && c.streams[st.id] == st {
		delete(c.streams, st.id)
	}
	c.mu.Unlock()
	c.closeIfDone()
}

// localEnded is called once the response's last frame is buffered: a request
// the client is still sending is reset (NO_ERROR: the answer is complete).
func (c *conn) localEnded(st *stream) {
	c.mu.Lock()
	st.localDone.Store(true)
	if c.streams[st.id] == st {
		if !st.remoteDone {
			c.resetLocked(st, errNo)
		} else {
			delete(c.streams, st.id)
		}
	}
	if c.resetScore > 0 {
		c.resetScore--
	}
	c.mu.Unlock()
}

// closeIfDone closes a connection going away once nothing is left to answer.
func (c *conn) closeIfDone() {
	c.mu.Lock()
	done := c.goingAway && !c.closed && len(c.streams) == 0 && c.running == 0
	c.mu.Unlock()
	if done {
		c.closeSocket()
	}
}

// body is a request body fed by DATA frames; guarded by c.mu.
type body struct {
	c       *conn
	st      *stream
	cond    sync.Cond
	buf     []byte
	err     error       // io.EOF at the end, or why the stream ended
	closed  bool        // the handler closed it: DATA is dropped
	trailer http.Header // the request's declared trailers, filled at the end
	// needContinue: the client waits for a 100 before it sends the body;
	// the first Read sends it, unless the response has begun.
	needContinue atomic.Bool
}

func newBody(c *conn, st *stream) *body {
	b := &body{c: c, st: st}
	b.cond.L = &c.mu
	return b
}

// push adds data, reporting false when the handler no longer reads.
func (b *body) push(p []byte) bool {
	if b.closed || b.err != nil {
		return false
	}
	b.buf = append(b.buf, p...)
	b.cond.Signal()
	return true
}

func (b *body) failLocked(err error) {
	if b.err == nil {
		b.err = err
	}
	b.cond.Broadcast()
}

// askContinue sends the 100 a client expecting one waits for before its body.
func (b *body) askContinue() {
	c := b.c
	c.mu.Lock()
	send := b.needContinue.Swap(false) && len(b.buf) == 0 && b.err == nil && !b.closed && !b.st.reset && !c.closed
	if send {
		c.encBuf.b = c.encBuf.b[:0]
		c.field(":status", "100")
		c.wbuf = appendHeaderBlock(c.wbuf, b.st.id, c.encBuf.b, false, c.peerMaxFrame)
	}
	c.mu.Unlock()
	if send {
		c.flushFromHandler()
	}
}

func (b *body) Read(p []byte) (int, error) {
	c := b.c
	if b.needContinue.Load() {
		b.askContinue()
	}
	c.mu.Lock()
	for len(b.buf) == 0 && b.err == nil && !b.closed {
		b.cond.Wait()
	}
	if b.closed {
		c.mu.Unlock()
		return 0, http.ErrBodyReadAfterClose
	}
	if len(b.buf) == 0 {
		err := b.err
		c.mu.Unlock()
		if err == errClientGone || err == errStreamReset {
			return 0, io.ErrUnexpectedEOF
		}
		return 0, err
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	if len(b.buf) == 0 {
		b.buf = b.buf[:0:0]
	}
	c.giveBackLocked(b.st, int64(n))
	c.mu.Unlock()
	c.flushFromHandler()
	return n, nil
}

func (b *body) Close() error {
	c := b.c
	c.mu.Lock()
	if !b.closed {
		b.closed = true
		c.giveBackLocked(nil, int64(len(b.buf)))
		b.buf = nil
		b.cond.Broadcast()
	}
	c.mu.Unlock()
	return nil
}

// readTimedOut fails the body of a request not received within ReadTimeout.
func (c *conn) readTimedOut(st *stream) {
	c.mu.Lock()
	if !st.remoteDone && st.body != nil {
		st.body.failLocked(fmt.Errorf("h2: request body not received within %v: %w", c.s.ReadTimeout, os.ErrDeadlineExceeded))
	}
	c.mu.Unlock()
}
