package http1

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync"
	"time"
)

// defaultWatchAfter is Server.WatchAfter's default.
const defaultWatchAfter = 50 * time.Millisecond

// ErrClientGone is the cause of a watched request's context when the client
// closed the connection before the response was complete.
var ErrClientGone = errors.New("http1: the client closed the connection")

const (
	watchOff = iota
	watchArmed
	watchReading
)

// watch is a connection's lookout for its client leaving during a request, as
// net/http's background read is, but started only once the request is slow.
type watch struct {
	mu     sync.Mutex
	state  int
	timer  *time.Timer
	done   chan struct{}
	n      int   // bytes the read got: the start of a pipelined request
	err    error // the read's error
	cancel context.CancelCauseFunc
}

// WatchClient returns r with a context that is canceled (cause ErrClientGone)
// when the client closes the connection before the response is complete; the
// context ends anyway when the handler returns. It keeps r's values (the
// connection's local address, as net/http's request context has).
func (w *ResponseWriter) WatchClient(r *http.Request) *http.Request {
	st := w.c.st
	ctx, cancel := context.WithCancelCause(r.Context())
	st.watch.mu.Lock()
	st.watch.state, st.watch.cancel = watchArmed, cancel
	st.watch.mu.Unlock()
	after := w.c.s.WatchAfter
	if after <= 0 {
		after = defaultWatchAfter
	}
	if st.watch.timer == nil {
		st.watch.timer = time.AfterFunc(after, st.startWatch)
	} else {
		st.watch.timer.Reset(after)
	}
	return r.WithContext(ctx)
}

// startWatch is the timer's: the state is armed only while its connection is
// answering a request, which holds it.
func (st *reqState) startWatch() {
	wt := &st.watch
	wt.mu.Lock()
	defer wt.mu.Unlock()
	if wt.state != watchArmed {
		return
	}
	c := st.c
	if c.w == len(st.buf) {
		return
	}
	wt.state = watchReading
	// Under the lock, so that stopWatch's deadline in the past comes after it.
	c.nc.SetReadDeadline(time.Time{})
	done := make(chan struct{})
	wt.done = done
	cancel := wt.cancel
	go func() {
		defer close(done)
		n, err := c.nc.Read(st.buf[c.w:])
		wt.n, wt.err = n, err
		if n == 0 && err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			cancel(ErrClientGone)
		}
	}()
}

// stopWatch ends the watch of the request just answered, keeping what its read
// got, and reports whether the client has left.
func (c *conn) stopWatch() (gone bool) {
	if c.st == nil || c.st.watch.cancel == nil {
		return false
	}
	wt := &c.st.watch
	wt.timer.Stop()
	wt.mu.Lock()
	was := wt.state
	wt.state = watchOff
	wt.mu.Unlock()
	if was == watchReading {
		c.nc.SetReadDeadline(time.Unix(1, 0))
		<-wt.done
		c.nc.SetReadDeadline(time.Time{})
		c.w += wt.n
		gone = wt.n == 0 && wt.err != nil && !errors.Is(wt.err, os.ErrDeadlineExceeded)
	}
	wt.cancel(context.Canceled)
	wt.cancel = nil
	return gone
}
