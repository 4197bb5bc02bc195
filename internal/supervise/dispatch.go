package supervise

import (
	"context"
	"runtime"
	"time"
)

// Acquire returns a ready worker with a free request slot, waiting for one if need be.
// Every successful Acquire must be paired with a Release.
func (p *Pool) Acquire(ctx context.Context) (*Worker, error) {
	return p.AcquireWithin(ctx, 0)
}

// AcquireWithin is Acquire waiting at most d (no limit when d is zero), then
// failing with context.DeadlineExceeded: a timer per wait is cheaper than a
// context with a deadline, which a busy pool would build for every request.
func (p *Pool) AcquireWithin(ctx context.Context, d time.Duration) (*Worker, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if w := p.pickLocked(); w != nil {
		w.inflight++
		p.mu.Unlock()
		return w, nil
	}
	ch := make(chan *Worker, 1)
	if len(p.waiters) == 0 {
		p.queued = time.Now()
	}
	p.waiters = append(p.waiters, ch)
	p.mu.Unlock()
	var expired <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		expired = t.C
	}
	var err error
	select {
	case w := <-ch:
		if w == nil {
			return nil, ErrClosed
		}
		return w, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-expired:
		err = context.DeadlineExceeded
	}
	p.mu.Lock()
	for i, c := range p.waiters {
		if c == ch {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.mu.Unlock()
			return nil, err
		}
	}
	p.mu.Unlock()
	// Handed a worker just as the wait ended: give it back.
	if w := <-ch; w != nil {
		p.Release(w, OK)
	}
	return nil, err
}

// TryAcquire is Acquire without waiting: nil when no worker has a free slot now.
func (p *Pool) TryAcquire() *Worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.waiters) > 0 {
		return nil
	}
	w := p.pickLocked()
	if w != nil {
		w.inflight++
	}
	return w
}

// pickLocked returns the least busy ready worker with a free slot, or nil.
func (p *Pool) pickLocked() *Worker {
	var best *Worker
	for _, s := range p.slots {
		w := s.current
		if w == nil || w.state != StateReady || w.inflight >= p.opts.Concurrency {
			continue
		}
		if best == nil || w.inflight < best.inflight {
			best = w
		}
	}
	return best
}

func (p *Pool) dispatchLocked() (handed bool) {
	for len(p.waiters) > 0 {
		w := p.pickLocked()
		if w == nil {
			return handed
		}
		w.inflight++
		ch := p.waiters[0]
		p.waiters = p.waiters[1:]
		ch <- w
		handed = true
	}
	return handed
}

// Release ends a request on w. See Outcome.
func (p *Pool) Release(w *Worker, o Outcome) {
	p.mu.Lock()
	w.inflight--
	w.requests++
	switch {
	case o == Stuck:
		p.log.Error("request timed out; replacing worker", "slot", w.Slot, "pid", w.PID)
		p.replaceLocked(w, true)
	case o == Failed:
		w.failed = true
		if w.state == StateReady {
			// The monitor respawns it when the process is really gone; until then a
			// broken worker must not take more requests.
			p.replaceLocked(w, true)
		}
	case w.limit > 0 && w.requests >= w.limit && !w.replaced:
		p.log.Info("worker reached max_requests; recycling", "slot", w.Slot, "pid", w.PID, "requests", w.requests)
		p.replaceLocked(w, false)
	}
	if w.state == StateRetiring && w.inflight == 0 {
		p.stopLocked(w, w.kill)
	}
	handed := p.dispatchLocked()
	p.mu.Unlock()
	if handed {
		// The slot went straight to a request waiting in Acquire, which the runtime
		// would otherwise run only once this goroutine blocks, after it has written
		// its response to the client. Meanwhile the worker sits idle: let the waiter
		// send its request first.
		runtime.Gosched()
	}
}
