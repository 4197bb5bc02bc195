package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Start launches opts.Size workers and returns once all are ready. On a startup
// failure it stops everything it started and returns a *StartError.
func Start(ctx context.Context, opts Options) (*Pool, error) {
	if opts.Command == nil {
		return nil, errors.New("supervise: Options.Command is nil")
	}
	if opts.Size <= 0 {
		opts.Size = 1
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 10 * time.Second
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 100 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &Pool{opts: opts, log: opts.Logger.With("pool", opts.Name), ctx: pctx, cancel: cancel,
		live: map[*Worker]struct{}{}, limited: map[string]uint64{}}
	for i := 0; i < opts.Size; i++ {
		p.slots = append(p.slots, &slot{backoff: opts.BackoffMin})
	}
	if opts.PrivateTmp {
		var err error
		if p.tmpRoot, err = os.MkdirTemp("", "gantry-tmp-"); err != nil {
			return nil, fmt.Errorf("supervise: %s: temp directory: %w", opts.Name, err)
		}
		// Workers run as another user reach their own directory below, and no
		// other: each is 0700 and theirs.
		if err := os.Chmod(p.tmpRoot, 0o711); err != nil {
			os.Remove(p.tmpRoot)
			return nil, fmt.Errorf("supervise: %s: temp directory: %w", opts.Name, err)
		}
	}
	type result struct {
		w   *Worker
		err error
	}
	results := make(chan result, opts.Size)
	for i := range p.slots {
		go func(i int) {
			w, err := p.spawn(ctx, i, 0)
			results <- result{w, err}
		}(i)
	}
	var firstErr error
	var started []*Worker
	for range p.slots {
		r := <-results
		if r.err != nil {
			if firstErr == nil {
				firstErr = r.err
			}
			continue
		}
		started = append(started, r.w)
	}
	if firstErr != nil {
		stopCtx, c := context.WithTimeout(context.Background(), opts.StopTimeout)
		defer c()
		_ = p.Shutdown(stopCtx)
		return nil, firstErr
	}
	p.mu.Lock()
	for _, w := range started {
		p.slots[w.Slot].current = w
		w.state = StateReady
	}
	p.mu.Unlock()
	p.log.Info("workers ready", "processes", opts.Size)
	return p, nil
}

// replaceLocked starts a replacement for w. A stuck or broken worker (kill) leaves
// the rotation now; a healthy one keeps serving until its replacement is ready.
func (p *Pool) replaceLocked(w *Worker, kill bool) {
	if p.closed || w.replaced {
		if kill {
			p.retireLocked(w, true)
		}
		return
	}
	w.replaced = true
	if kill {
		p.retireLocked(w, true)
	}
	p.respawnLocked(w.Slot, w.Generation+1, 0)
}

// Reload replaces the workers one by one: each new worker must be ready before the
// old one stops taking requests, and the old one finishes what it has in flight. If
// a new worker fails to start, the old ones keep serving and the error is returned.
func (p *Pool) Reload(ctx context.Context) error {
	for i := range p.slots {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return ErrClosed
		}
		gen := 0
		if cur := p.slots[i].current; cur != nil {
			gen = cur.Generation + 1
		}
		p.mu.Unlock()
		w, err := p.spawn(ctx, i, gen)
		if err != nil {
			return fmt.Errorf("reload: %w", err)
		}
		p.mu.Lock()
		p.slots[i].restarts++
		p.installLocked(w)
		p.mu.Unlock()
	}
	p.log.Info("workers reloaded", "processes", len(p.slots))
	return nil
}

// Shutdown stops taking requests, lets in-flight ones finish, then stops every worker
// (SIGTERM, SIGKILL after StopTimeout or when ctx ends) and waits until all are reaped.
func (p *Pool) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.cancel()
		for _, ch := range p.waiters {
			ch <- nil
		}
		p.waiters = nil
		for w := range p.live {
			if w.state == StateReady {
				w.state = StateRetiring
			}
			if w.inflight == 0 && w.state == StateRetiring {
				p.stopLocked(w, false)
			}
		}
		for _, s := range p.slots {
			s.current = nil
		}
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		p.removeTmp()
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		for w := range p.live {
			_ = syscall.Kill(-w.PID, syscall.SIGKILL)
		}
		p.mu.Unlock()
		<-done
		p.removeTmp()
		return fmt.Errorf("supervise: %s: shutdown: %w", p.opts.Name, ctx.Err())
	}
}

// Workers returns a snapshot of every live worker, current ones first by slot.
func (p *Pool) Workers() []WorkerInfo {
	p.mu.Lock()
	var out []WorkerInfo
	add := func(w *Worker) {
		out = append(out, WorkerInfo{PID: w.PID, State: w.state, Requests: w.requests,
			Started: w.Started, Restarts: p.slots[w.Slot].restarts, Inflight: w.inflight})
	}
	for _, s := range p.slots {
		if s.current != nil {
			add(s.current)
		}
	}
	for w := range p.live {
		if p.slots[w.Slot].current != w && w.PID != 0 {
			add(w)
		}
	}
	p.mu.Unlock()
	for i := range out {
		out[i].RSSKB = RSSKB(out[i].PID)
	}
	return out
}

// Health returns the pool's crash count, latest crash and queue.
func (p *Pool) Health() Health {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := Health{Size: len(p.slots), Concurrency: p.opts.Concurrency, Last: p.crash, Queued: len(p.waiters)}
	for _, s := range p.slots {
		h.Crashes += s.crashes
	}
	for w := range p.live {
		h.Busy += w.inflight
	}
	if h.Queued > 0 {
		h.Since = p.queued
	}
	return h
}

func (p *Pool) removeTmp() {
	if p.tmpRoot != "" {
		os.RemoveAll(p.tmpRoot)
	}
}

// LimitKills counts the workers that their max_memory or max_cpu limit ended, by
// limit (LimitMemory, LimitCPU).
func (p *Pool) LimitKills() map[string]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.limited)
}

// RSSKB is the resident memory of process pid, in kB; 0 if it is gone.
func RSSKB(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
