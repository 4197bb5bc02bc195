// Package supervise runs a pool of long-lived worker processes the way mod_fcgid,
// uWSGI's master or supervisord do: readiness before traffic, restart with exponential
// backoff, no tight respawn loop on a startup error, max_requests recycling with
// jitter, one-by-one replacement on reload, graceful and forced stop, and one process
// group per worker so that nothing a worker forks outlives it.
//
// It is shared by the WSGI gateway (Python workers) and the FastCGI gateway
// (fastcgi_command, e.g. `php-cgi -b`). A FastCGI user writes roughly:
//
//	pool, err := supervise.Start(ctx, supervise.Options{
//		Name:        "php-cgi /srv/site",
//		Size:        2,
//		Concurrency: 1, // php-cgi -b with PHP_FCGI_CHILDREN=0 serves one request at a time
//		Command: func(w *supervise.Worker) (*exec.Cmd, error) {
//			sock := filepath.Join(dir, fmt.Sprintf("php-%d-%d.sock", w.Slot, w.Generation))
//			os.Remove(sock)
//			w.Data = sock // whatever the gateway needs to reach this incarnation
//			cmd := exec.Command("php-cgi", "-b", sock)
//			cmd.Env = append(os.Environ(), "PHP_FCGI_CHILDREN=0", "PHP_FCGI_MAX_REQUESTS=0")
//			return cmd, nil
//		},
//		Ready:       func(ctx context.Context, w *supervise.Worker) error {
//			return supervise.WaitDial(ctx, "unix", w.Data.(string))
//		},
//		Exited:      func(w *supervise.Worker) { os.Remove(w.Data.(string)) },
//		MaxRequests: 500,
//		Logger:      logger,
//	})
//	// per request:
//	w, err := pool.Acquire(r.Context())    // blocks until a ready worker has a free slot
//	... dial w.Data.(string), talk FastCGI ...
//	pool.Release(w, supervise.OK)          // or supervise.Failed (crash seen), supervise.Stuck (timed out: replace it)
//	// on shutdown:
//	pool.Shutdown(ctx)                     // waits for in-flight requests, then SIGTERM, then SIGKILL
//
// Start returns only when every worker is ready; a worker that exits (or whose Ready
// fails) before it is ready is a startup error: Start stops the others and returns a
// *StartError carrying the process's output, so the caller can show it once. After
// Start, a worker that dies is respawned with exponential backoff (a startup error on a
// respawn is logged once and retried with growing delays, never in a tight loop).
//
// The supervisor closes cmd.ExtraFiles in the parent after the process started, puts
// the child in its own process group, asks the kernel to kill it if gantry dies
// (Pdeathsig) and logs its stdout (info) and stderr (error) line by line.
package supervise

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configures a pool.
type Options struct {
	// Name identifies the pool in logs and errors, e.g. `wsgi "/" mysite.wsgi:application`.
	Name string
	// Size is the number of worker processes (default 1).
	Size int
	// Concurrency is how many requests one worker takes at once (default 1).
	Concurrency int
	// Command builds the command for one incarnation of a worker. It is called for the
	// first start and every respawn; it may set w.Data for Ready, Exited and the caller.
	Command func(w *Worker) (*exec.Cmd, error)
	// Ready blocks until the worker serves, or returns an error (a startup failure).
	// ctx ends when the process exits or StartTimeout passes. Nil: ready once started.
	Ready func(ctx context.Context, w *Worker) error
	// Exited runs after the process has exited and been reaped (close its sockets here).
	Exited func(w *Worker)
	// Stopping, when set, runs just before a worker is signalled to stop (recycled,
	// replaced, shut down), with the pool's lock held: it must not call the pool. A
	// gateway that keeps idle connections to the worker closes them here, so that a
	// worker blocked reading one (php-cgi) sees its SIGTERM at once.
	Stopping func(w *Worker)
	// Credential, when set, runs workers as that user and group.
	Credential *syscall.Credential
	// StartTimeout bounds the time from start to ready (default 60s).
	StartTimeout time.Duration
	// StopTimeout is the grace between SIGTERM and SIGKILL (default 10s).
	StopTimeout time.Duration
	// MaxRequests recycles a worker after about that many requests (0 = never). Each
	// worker's limit is drawn from [MaxRequests, MaxRequests+MaxRequests/4] so that
	// workers do not all restart at once.
	MaxRequests uint64
	// BackoffMin and BackoffMax bound the respawn delay (defaults 100ms and 30s); the
	// delay doubles on every failure and resets once a worker has run for a minute.
	BackoffMin, BackoffMax time.Duration
	// Logger receives lifecycle events and the workers' output (default: discard).
	Logger *slog.Logger
}

// Outcome tells Release how a request on a worker ended.
type Outcome int

const (
	// OK: the request completed normally.
	OK Outcome = iota
	// Failed: the worker broke the request (connection lost); the process monitor
	// takes care of a dead process, the pool only stops routing to it now.
	Failed
	// Stuck: the request timed out. The worker gets no more requests, a replacement
	// is started at once, and the worker is killed when its other requests finished.
	Stuck
)

// Worker states as shown by WorkerInfo.
const (
	StateStarting = "starting"
	StateReady    = "ready"
	StateRetiring = "retiring" // draining in-flight requests before it stops
	StateStopping = "stopping"
	StateExited   = "exited"
)

// WorkerInfo is a snapshot of one worker for the dashboard.
type WorkerInfo struct {
	PID      int
	State    string
	Requests uint64
	RSSKB    int64
	Started  time.Time
	Restarts int
}

// StartError is a worker that failed before it became ready.
type StartError struct {
	Name   string
	Err    error  // why: exit status, Ready's error, timeout
	Output string // what the process printed (stderr and stdout), trimmed
}

func (e *StartError) Error() string {
	msg := fmt.Sprintf("%s: worker failed to start: %v", e.Name, e.Err)
	if e.Output != "" {
		msg += "\n" + e.Output
	}
	return msg
}

func (e *StartError) Unwrap() error { return e.Err }

// ErrClosed is returned by Acquire after Shutdown began.
var ErrClosed = errors.New("supervise: pool is shut down")

// Worker is one incarnation of a worker process.
type Worker struct {
	Slot       int       // 0..Size-1, stable across respawns
	Generation int       // how many processes this slot has started before this one
	PID        int       // set once started
	Started    time.Time // set once started
	// Data belongs to the user of the pool (set it in Command).
	Data any

	pool     *Pool
	cmd      *exec.Cmd
	state    string
	inflight int
	requests uint64
	limit    uint64        // max requests for this incarnation, 0 = none
	kill     bool          // retiring because stuck: SIGKILL, no grace
	replaced bool          // a replacement has been requested for it
	done     chan struct{} // closed when the process has exited and been reaped
	exitErr  error
	out      *outputLog
}

type slot struct {
	current  *Worker // the worker that receives traffic; nil while respawning
	restarts int
	backoff  time.Duration
	failing  string // last startup error logged, to log a repeating one only once
}

// Pool is a set of supervised workers.
type Pool struct {
	opts    Options
	log     *slog.Logger
	ctx     context.Context // cancelled by Shutdown: ends backoff waits and starts
	cancel  context.CancelFunc
	mu      sync.Mutex
	slots   []*slot
	live    map[*Worker]struct{} // every process not yet reaped
	waiters []chan *Worker
	closed  bool
	wg      sync.WaitGroup // background goroutines (monitors, respawns)
}

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
		live: map[*Worker]struct{}{}}
	for i := 0; i < opts.Size; i++ {
		p.slots = append(p.slots, &slot{backoff: opts.BackoffMin})
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

// spawn starts one incarnation for slot i and waits until it is ready. On failure
// the process is gone when spawn returns.
func (p *Pool) spawn(ctx context.Context, i, generation int) (*Worker, error) {
	w := &Worker{Slot: i, Generation: generation, pool: p, state: StateStarting, done: make(chan struct{})}
	if n := p.opts.MaxRequests; n > 0 {
		w.limit = n + rand.Uint64N(n/4+1)
	}
	startErr := func(err error) *StartError {
		return &StartError{Name: p.opts.Name, Err: err, Output: w.out.String()}
	}
	cmd, err := p.opts.Command(w)
	if err != nil {
		return nil, &StartError{Name: p.opts.Name, Err: err}
	}
	w.cmd = cmd
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if p.opts.Credential != nil {
		cmd.SysProcAttr.Credential = p.opts.Credential
	}
	w.out = &outputLog{log: p.log.With("slot", i)}
	var pipes []*os.File
	if cmd.Stdout == nil {
		r, wr, err := os.Pipe()
		if err != nil {
			return nil, startErr(fmt.Errorf("stdout pipe: %w", err))
		}
		cmd.Stdout = wr
		pipes = append(pipes, r, wr)
	}
	if cmd.Stderr == nil {
		r, wr, err := os.Pipe()
		if err != nil {
			closeAll(pipes)
			return nil, startErr(fmt.Errorf("stderr pipe: %w", err))
		}
		cmd.Stderr = wr
		pipes = append(pipes, r, wr)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		closeAll(pipes)
		closeAll(cmd.ExtraFiles)
		return nil, startErr(ErrClosed)
	}
	err = cmd.Start()
	if err == nil {
		w.PID = cmd.Process.Pid
		w.Started = time.Now()
		p.live[w] = struct{}{}
	}
	p.mu.Unlock()
	closeAll(cmd.ExtraFiles)
	var readers sync.WaitGroup
	for j := 0; j < len(pipes); j += 2 {
		pipes[j+1].Close()
		if err == nil {
			readers.Add(1)
			go func(r *os.File, stderr bool) {
				defer readers.Done()
				w.out.copy(r, stderr)
				r.Close()
			}(pipes[j], cmd.Stderr == pipes[j+1])
		} else {
			pipes[j].Close()
		}
	}
	if err != nil {
		return nil, startErr(fmt.Errorf("start %s: %w", cmd.Path, err))
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		err := cmd.Wait()
		readers.Wait()
		// Whatever the worker forked goes with it.
		_ = syscall.Kill(-w.PID, syscall.SIGKILL)
		w.exitErr = err
		if p.opts.Exited != nil {
			p.opts.Exited(w)
		}
		p.exited(w)
		close(w.done)
	}()

	rctx, cancel := context.WithTimeout(ctx, p.opts.StartTimeout)
	defer cancel()
	go func() {
		select {
		case <-w.done:
			cancel()
		case <-rctx.Done():
		}
	}()
	if p.opts.Ready != nil {
		err = p.opts.Ready(rctx, w)
	}
	select {
	case <-w.done:
		if err == nil {
			err = errors.New("exited during startup")
		}
	default:
	}
	if err != nil {
		select {
		case <-w.done:
			if w.exitErr != nil {
				err = fmt.Errorf("%w (%v)", err, w.exitErr)
			}
		default:
			if rctx.Err() == context.DeadlineExceeded {
				err = fmt.Errorf("not ready after %s: %w", p.opts.StartTimeout, err)
			}
			_ = syscall.Kill(-w.PID, syscall.SIGKILL)
			<-w.done
		}
		return nil, startErr(err)
	}
	w.out.started()
	p.log.Info("worker started", "slot", i, "pid", w.PID)
	return w, nil
}

// exited is the monitor's report that w's process is gone.
func (p *Pool) exited(w *Worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.live, w)
	prev := w.state
	w.state = StateExited
	s := p.slots[w.Slot]
	if prev == StateStarting {
		return // spawn reports it
	}
	if s.current != w {
		return // retired and stopped on purpose
	}
	s.current = nil
	if p.closed {
		return
	}
	p.log.Error("worker exited unexpectedly; respawning", "slot", w.Slot, "pid", w.PID,
		"status", exitText(w.exitErr), "requests", w.requests)
	if time.Since(w.Started) > time.Minute {
		s.backoff = p.opts.BackoffMin
	}
	p.respawnLocked(w.Slot, w.Generation+1, s.backoff)
	s.backoff = min(s.backoff*2, p.opts.BackoffMax)
}

// respawnLocked starts a new worker for slot i after delay, retrying with backoff
// until it is ready, then installs it as the slot's current worker (retiring
// whichever was there).
func (p *Pool) respawnLocked(i, generation int, delay time.Duration) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			if delay > 0 {
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-p.ctx.Done():
					t.Stop()
					return
				}
			}
			w, err := p.spawn(p.ctx, i, generation)
			p.mu.Lock()
			s := p.slots[i]
			if err != nil {
				if p.closed {
					p.mu.Unlock()
					return
				}
				delay = s.backoff
				s.backoff = min(s.backoff*2, p.opts.BackoffMax)
				if msg := err.Error(); msg != s.failing {
					s.failing = msg
					p.log.Error("worker failed to start; will retry", "slot", i, "retry_in", delay, "err", msg)
				} else {
					p.log.Warn("worker still failing to start", "slot", i, "retry_in", delay)
				}
				generation++
				p.mu.Unlock()
				continue
			}
			s.failing = ""
			s.restarts++
			p.installLocked(w)
			p.mu.Unlock()
			return
		}
	}()
}

// installLocked makes w the slot's current worker and retires the old one.
func (p *Pool) installLocked(w *Worker) {
	s := p.slots[w.Slot]
	if p.closed {
		p.stopLocked(w, false)
		return
	}
	if old := s.current; old != nil && old != w {
		p.retireLocked(old, false)
	}
	s.current = w
	w.state = StateReady
	p.dispatchLocked()
}

// retireLocked stops routing to w and stops it once its requests are done.
func (p *Pool) retireLocked(w *Worker, kill bool) {
	if s := p.slots[w.Slot]; s.current == w {
		s.current = nil
	}
	if w.state == StateReady {
		w.state = StateRetiring
	}
	w.kill = w.kill || kill
	if w.inflight == 0 && w.state == StateRetiring {
		p.stopLocked(w, w.kill)
	}
}

// stopLocked signals w's process group: SIGTERM then SIGKILL after StopTimeout, or
// SIGKILL at once when kill is set.
func (p *Pool) stopLocked(w *Worker, kill bool) {
	if w.state == StateExited || w.state == StateStopping {
		return
	}
	w.state = StateStopping
	if p.opts.Stopping != nil {
		p.opts.Stopping(w)
	}
	if kill {
		_ = syscall.Kill(-w.PID, syscall.SIGKILL)
		return
	}
	_ = syscall.Kill(-w.PID, syscall.SIGTERM)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTimer(p.opts.StopTimeout)
		defer t.Stop()
		select {
		case <-w.done:
		case <-t.C:
			p.log.Warn("worker ignored SIGTERM; killing it", "slot", w.Slot, "pid", w.PID)
			_ = syscall.Kill(-w.PID, syscall.SIGKILL)
		}
	}()
}

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
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		for w := range p.live {
			_ = syscall.Kill(-w.PID, syscall.SIGKILL)
		}
		p.mu.Unlock()
		<-done
		return fmt.Errorf("supervise: %s: shutdown: %w", p.opts.Name, ctx.Err())
	}
}

// Workers returns a snapshot of every live worker, current ones first by slot.
func (p *Pool) Workers() []WorkerInfo {
	p.mu.Lock()
	var out []WorkerInfo
	add := func(w *Worker) {
		out = append(out, WorkerInfo{PID: w.PID, State: w.state, Requests: w.requests,
			Started: w.Started, Restarts: p.slots[w.Slot].restarts})
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
		out[i].RSSKB = rssKB(out[i].PID)
	}
	return out
}

// WaitDial polls until network/addr accepts a connection or ctx ends: the readiness
// check for a worker that listens on a socket (php-cgi -b).
func WaitDial(ctx context.Context, network, addr string) error {
	var d net.Dialer
	delay := 5 * time.Millisecond
	for {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			c.Close()
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("dial %s: %w", addr, err)
		case <-t.C:
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

func rssKB(pid int) int64 {
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

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

// outputLog collects a worker's output: kept (bounded) until the worker is ready so a
// startup failure can be reported in one piece, logged line by line afterwards.
type outputLog struct {
	log     *slog.Logger
	mu      sync.Mutex
	ready   bool
	buf     []string
	size    int
	dropped int
}

const maxStartupOutput = 64 << 10

func (o *outputLog) copy(r io.Reader, stderr bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		o.mu.Lock()
		if !o.ready {
			o.buf = append(o.buf, line)
			o.size += len(line)
			for o.size > maxStartupOutput && len(o.buf) > 1 {
				o.size -= len(o.buf[0])
				o.buf = o.buf[1:]
				o.dropped++
			}
			o.mu.Unlock()
			continue
		}
		o.mu.Unlock()
		if stderr {
			o.log.Error(line)
		} else {
			o.log.Info(line)
		}
	}
}

// started flushes what the worker printed while starting (warnings at import time).
func (o *outputLog) started() {
	o.mu.Lock()
	lines := o.buf
	o.buf, o.ready = nil, true
	o.mu.Unlock()
	for _, l := range lines {
		o.log.Warn(l)
	}
}

func (o *outputLog) String() string {
	if o == nil {
		return ""
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	s := strings.Join(o.buf, "\n")
	if o.dropped > 0 {
		s = fmt.Sprintf("[%d earlier lines dropped]\n", o.dropped) + s
	}
	return strings.TrimSpace(s)
}
