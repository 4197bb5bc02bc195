package supervise

import (
	"bufio"
	"bytes"
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

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
	monitored := false
	defer func() {
		if !monitored && w.tmp != "" {
			os.RemoveAll(w.tmp) // the monitor removes it once it runs
		}
	}()
	if p.tmpRoot != "" {
		if err := p.privateTmp(w, cmd); err != nil {
			closeAll(handedOver(cmd))
			return nil, startErr(err)
		}
	}
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
		closeAll(handedOver(cmd))
		return nil, startErr(ErrClosed)
	}
	err = p.start(cmd)
	if err == nil {
		w.PID = cmd.Process.Pid
		w.Started = time.Now()
		p.live[w] = struct{}{}
	}
	p.mu.Unlock()
	closeAll(handedOver(cmd))
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
	monitored = true
	p.wg.Add(1)
	// A pidfd of its own, not os/exec's: O_NONBLOCK belongs to the open
	// file, and on os/exec's it would make cmd.Wait return at once.
	var exited *os.File
	if fd, err := unix.PidfdOpen(w.PID, unix.PIDFD_NONBLOCK); err == nil {
		exited = os.NewFile(uintptr(fd), "worker pidfd")
	}
	go func() {
		defer p.wg.Done()
		if exited != nil {
			WaitExited(exited)
			exited.Close()
		}
		err := cmd.Wait()
		readers.Wait()
		// Whatever the worker forked goes with it.
		_ = syscall.Kill(-w.PID, syscall.SIGKILL)
		w.exitErr = err
		w.killedBy = p.opts.Limits.exitReason(err)
		if w.tmp != "" {
			os.RemoveAll(w.tmp)
		}
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
	if w.killedBy != "" {
		// Counted whether or not a failed request already had it replaced.
		p.limited[w.killedBy]++
		p.log.Error("worker ended by its "+w.killedBy+" limit", "slot", w.Slot, "pid", w.PID,
			"status", exitText(w.exitErr), "requests", w.requests)
	}
	prev := w.state
	w.state = StateExited
	s := p.slots[w.Slot]
	if prev == StateStarting {
		return // spawn reports it
	}
	if s.current != w {
		// Retired and stopped on purpose, unless a request saw it break and it
		// died of something other than the pool's own signal: the retirement only
		// came first because the gateway noticed before the monitor did.
		if w.failed && !p.closed && w.killedBy == "" && !signalledBy(w.exitErr, w.sent) {
			p.recordCrashLocked(w)
		}
		return
	}
	s.current = nil
	if p.closed {
		return
	}
	if w.killedBy == "" {
		// A limit's kill is logged and counted above, not as a crash.
		p.recordCrashLocked(w)
		p.log.Error("worker exited unexpectedly; respawning", "slot", w.Slot, "pid", w.PID,
			"status", p.crash.Status, "requests", w.requests)
	}
	if time.Since(w.Started) > time.Minute {
		s.backoff = p.opts.BackoffMin
	}
	p.respawnLocked(w.Slot, w.Generation+1, s.backoff)
	s.backoff = min(s.backoff*2, p.opts.BackoffMax)
}

func (p *Pool) recordCrashLocked(w *Worker) {
	p.slots[w.Slot].crashes++
	p.crash = Crash{Time: time.Now(), Slot: w.Slot, PID: w.PID, Status: exitText(w.exitErr), Stderr: w.out.lastStderr()}
}

// signalledBy reports whether the process ended of signal sig.
func signalledBy(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if sig == 0 || !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
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
				s.crashes++
				p.crash = startCrash(i, err)
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
	// A process already dead (killed from outside mid-request, the gateway
	// noticing first) did not die of the pool's signal: its exit stays a crash.
	running := !hasExited(w.PID)
	if kill {
		if running {
			w.sent = syscall.SIGKILL
		}
		_ = syscall.Kill(-w.PID, syscall.SIGKILL)
		return
	}
	if running {
		w.sent = syscall.SIGTERM
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
			p.mu.Lock()
			if !hasExited(w.PID) {
				w.sent = syscall.SIGKILL
			}
			p.mu.Unlock()
			_ = syscall.Kill(-w.PID, syscall.SIGKILL)
		}
	}()
}

// start starts cmd under the pool's limits: traced, so that they are set before
// the process runs, or, where tracing is forbidden, set just after.
func (p *Pool) start(cmd *exec.Cmd) error {
	l := p.opts.Limits
	if !l.Set() {
		return cmd.Start()
	}
	traced := l.Traced()
	if traced {
		// The tracer is the thread that forked: it alone may let the child go.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cmd.SysProcAttr.Ptrace = true
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	var err error
	reaped := false
	if traced {
		reaped, err = l.StartTraced(cmd.Process.Pid)
	} else {
		err = l.Apply(cmd.Process.Pid)
	}
	if err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if reaped {
			_ = cmd.Process.Release()
		} else {
			_ = cmd.Wait()
		}
	}
	return err
}

// privateTmp makes w's temp directory, the process's user's alone, and points
// TMPDIR at it.
func (p *Pool) privateTmp(w *Worker, cmd *exec.Cmd) error {
	dir, err := os.MkdirTemp(p.tmpRoot, fmt.Sprintf("%d-%d-", w.Slot, w.Generation))
	if err != nil {
		return fmt.Errorf("temp directory: %w", err)
	}
	if c := p.opts.Credential; c != nil {
		if err := os.Chown(dir, int(c.Uid), int(c.Gid)); err != nil {
			os.Remove(dir)
			return fmt.Errorf("temp directory: %w", err)
		}
	}
	w.tmp = dir
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	// Clipped: Command may hand every worker the same slice, and an append into
	// its spare room would give one worker another's TMPDIR.
	cmd.Env = append(slices.Clip(cmd.Env), "TMPDIR="+dir)
	return nil
}

// hasExited reports whether child pid has ended or is ending: waitable, reaped
// already, or its main thread a zombie while its other threads exit (a
// multithreaded worker is not waitable until the last one is gone). It peeks
// (WNOWAIT) and leaves the reaping to cmd.Wait.
func hasExited(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	switch {
	case err != nil:
		return errors.Is(err, unix.ECHILD)
	case info.Signo == int32(syscall.SIGCHLD):
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && bytes.HasPrefix(b[i+1:], []byte(" Z"))
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

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// startCrash describes a respawn that failed before the worker was ready.
func startCrash(slot int, err error) Crash {
	c := Crash{Time: time.Now(), Slot: slot, Status: err.Error()}
	var se *StartError
	if errors.As(err, &se) {
		c.Status = se.Err.Error()
		out := strings.TrimSpace(se.Output)
		c.Stderr = shortLine(out[strings.LastIndexByte(out, '\n')+1:])
	}
	return c
}

// handedOver is what the parent gives the child and closes once it started: the
// extra files and a file as stdin (a FastCGI listening socket).
func handedOver(cmd *exec.Cmd) []*os.File {
	fs := cmd.ExtraFiles
	if f, ok := cmd.Stdin.(*os.File); ok {
		fs = append(slices.Clip(fs), f)
	}
	return fs
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
	last    string // the latest non-blank stderr line
}

// shortLine is line as text to show, not to keep: without the escape sequences
// that colour a terminal or set its title, other control bytes as spaces, valid
// UTF-8, trimmed and cut at 512 bytes.
func shortLine(line string) string {
	const limit = 512
	line = stripEscapes(strings.ToValidUTF8(line, ""))
	line = strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return ' '
		}
		return r
	}, line))
	if len(line) > limit {
		line = strings.ToValidUTF8(line[:limit], "") + "…"
	}
	return line
}

// stripEscapes drops ANSI escape sequences: CSI (ESC [ ... final byte) and OSC
// (ESC ] ... BEL or ESC \); a lone ESC goes with the byte after it.
func stripEscapes(s string) string {
	if !strings.Contains(s, "\x1b") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != 0x1b {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch {
		case i >= len(s):
		case s[i] == '[':
			for i++; i < len(s) && (s[i] < 0x40 || s[i] > 0x7e); i++ {
			}
		case s[i] == ']':
			for i++; i < len(s) && s[i] != 0x07 && !(s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\'); i++ {
			}
			if i < len(s) && s[i] == 0x1b {
				i++
			}
		}
	}
	return b.String()
}

func (o *outputLog) lastStderr() string {
	if o == nil {
		return ""
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last
}

const maxStartupOutput = 64 << 10

func (o *outputLog) copy(r io.Reader, stderr bool) {
	// A line longer than the buffer is kept as its first 64 KB and the rest is
	// skipped: reading must go on, or the worker dies of SIGPIPE on its next write.
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		b, err := br.ReadSlice('\n')
		long := errors.Is(err, bufio.ErrBufferFull)
		if len(b) == 0 && err != nil && !long {
			return
		}
		line := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n')
		}
		if long {
			line += " [line cut at 64 KB]"
		}
		var shown string
		if stderr {
			shown = shortLine(line) // a reset of colours alone is a blank line
		}
		o.mu.Lock()
		if shown != "" {
			o.last = shown
		}
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
