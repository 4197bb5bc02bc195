//go:build python

package pyembed

/*
#cgo pkg-config: python3-embed
#include "pyembed.h"
#include <stdlib.h>
*/
import "C"

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

//go:embed shim.py
var shimSource string

// Linked is the version of the libpython gantry is linked with, "3.11.2".
func Linked() string {
	v := C.GoString(C.Py_GetVersion())
	v, _, _ = strings.Cut(v, " ")
	return v
}

// Errors of Acquire.
var (
	// ErrAllStuck: every thread is still running a request that timed out.
	ErrAllStuck = errors.New("every Python thread is held by a request that timed out")
	// ErrBusy: no thread came free in time.
	ErrBusy = errors.New("no Python thread came free in time")
	// ErrClosed: the pool is shutting down.
	ErrClosed = errors.New("the Python pool is shutting down")
)

// Request is what gantry does for the application while it serves one request. The
// pool thread calls it with the GIL released (and Head, for a response the app
// returned whole, is called once the app is done); the slices point into C memory
// and are valid only during the call. An error makes the app's call raise Gone.
type Request interface {
	// Head validates and sends the response head, then body (the whole body when
	// the app returned it in memory, else empty).
	Head(head, body []byte) error
	// Write sends body bytes as they come and flushes them.
	Write(p []byte) error
	// Read reads the request body; io.EOF at its end.
	Read(p []byte) (int, error)
	// SendFile sends the file behind fd (a descriptor the app owns) from offset.
	SendFile(fd int, offset int64) error
	// Log is the app's output (level 0), the exception that failed the request
	// (1), or one that is only logged (2).
	Log(level int, text string)
}

// Config is one application's.
type Config struct {
	App     string            // "module:callable" or a .py file
	Chdir   string            // first on sys.path
	Python  string            // the python whose installation (or venv) to use
	Env     map[string]string // set in os.environ
	Threads int
	Main    bool // the main interpreter rather than a sub-interpreter of its own
	Log     *slog.Logger
}

var (
	initOnce   sync.Once
	initErr    error
	initPython string
)

// start initialises the interpreter, once per process, on a thread kept for it:
// Python's main thread, which never runs a request.
func start(python string) error {
	initOnce.Do(func() {
		initPython = python
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			exe := C.CString(python)
			defer C.free(unsafe.Pointer(exe))
			var cerr *C.char
			if C.gantry_init(exe, &cerr) != 0 {
				initErr = fmt.Errorf("python: cannot initialise the interpreter with %s: %s", python, C.GoString(cerr))
				C.free(unsafe.Pointer(cerr))
			}
			close(done)
			if initErr == nil {
				select {} // Python's main thread stays this OS thread's alone
			}
		}()
		<-done
	})
	return initErr
}

// checkVersion asks python for its version: it must be the one gantry links.
func checkVersion(python string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])").Output()
	if err != nil {
		return fmt.Errorf("python %s: cannot ask its version: %w", python, err)
	}
	want := fmt.Sprintf("%d.%d", C.PY_MAJOR_VERSION, C.PY_MINOR_VERSION)
	if got := strings.TrimSpace(string(out)); got != want {
		return fmt.Errorf("python %s is Python %s, but this gantry is linked with libpython %s: "+
			"set python to a Python %s interpreter or virtualenv, or use mode = \"daemon\"", python, got, want, want)
	}
	return nil
}

// interp is one interpreter an application runs in.
type interp struct {
	interp   *C.PyInterpreterState
	handle   *C.PyObject        // the shim's request function
	cts      **C.PyThreadState  // C array: each pool thread's state in it, made by that thread
	ts       []*C.PyThreadState // the same array
	boot     *Thread            // made it; ends it
	sub      bool
	inflight int // under Pool.mu
	retired  bool
}

func newInterp(n int, boot *Thread, sub bool) *interp {
	ip := &interp{boot: boot, sub: sub}
	ip.cts = (**C.PyThreadState)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(uintptr(0)))))
	ip.ts = unsafe.Slice(ip.cts, n)
	return ip
}

func (ip *interp) free() {
	ip.ts = nil
	C.free(unsafe.Pointer(ip.cts))
}

// Thread is one goroutine locked to its OS thread for life, with its own thread
// state in each interpreter it serves. It takes requests from the pool's queue in C
// (gantry_post wakes it) and files each one served there, which the pool's
// completions goroutine finishes: handing a request over never moves a goroutine
// between OS threads, which Go's scheduler does only by sleeping one thread and
// waking another.
type Thread struct {
	pool    *Pool
	idx     int
	tid     int
	started time.Time
	mainTS  *C.PyThreadState
	admin   chan *job // work on the thread in Go: loading an app, ending an interpreter
	adminMu sync.Mutex
	stuck   bool // under Pool.mu
	errors  atomic.Uint64
}

// slotsFor is how many requests a pool of n threads queues in C. More than the
// threads, so that a thread done with a request finds the next one queued and
// serves it holding the GIL, rather than sleeping until gantry hands it one; and
// enough that a typical number of concurrent clients queue there, where taking the
// next request costs no goroutine wake-up, rather than in Acquire.
func slotsFor(n int) int { return max(8*n, 32) }

// Slot is room for one request in the pool (slotsFor): Acquire takes one, Serve
// queues the request in it, the first thread free to run Python serves it, and
// Respond or Leave frees it.
type Slot struct {
	pool    *Pool
	gid     int64
	seq     uint32
	c       *C.gantry_job       // in C memory
	cur     atomic.Pointer[job] // the request the app's callbacks reach, while it runs
	fin     *job                // written under Pool.mu: the request until the slot is free
	stuckOn *Thread             // under Pool.mu: the thread its timed-out request holds
}

type job struct {
	h         int64
	ip        *interp
	req       Request
	done      chan struct{}
	admin     func()
	quit      bool
	completed bool // under Pool.mu: the app returned
	left      bool // under Pool.mu: the handler no longer waits (Leave)
}

// registry maps request handles to slots for the callbacks from C.
var (
	regMu   sync.Mutex
	reg     atomic.Pointer[[]*Slot]
	poolIDs atomic.Int64
	pools   sync.Map // id -> *Pool, for the app's output outside a request
)

func register(s *Slot) {
	regMu.Lock()
	defer regMu.Unlock()
	var old []*Slot
	if p := reg.Load(); p != nil {
		old = *p
	}
	n := append(append([]*Slot(nil), old...), s)
	s.gid = int64(len(n))
	reg.Store(&n)
}

// unregister forgets a slot of a stopped pool; its index is not reused, so a stale
// handle finds nothing.
func unregister(s *Slot) {
	regMu.Lock()
	defer regMu.Unlock()
	n := append([]*Slot(nil), *reg.Load()...)
	n[s.gid-1] = nil
	reg.Store(&n)
}

func lookup(gid int64) *Slot {
	p := reg.Load()
	if p == nil || gid < 1 || gid > int64(len(*p)) {
		return nil
	}
	return (*p)[gid-1]
}

// Pool runs one application on a fixed number of threads.
type Pool struct {
	cfg     Config
	id      int64
	log     *slog.Logger
	threads []*Thread
	slots   []*Slot
	c       *C.gantry_pool
	efd     *os.File // signalled when served requests wait for completions
	compl   chan struct{}
	ending  sync.WaitGroup

	mu      sync.Mutex
	free    []*Slot
	waiters []chan *Slot
	nstuck  int
	cur     *interp
	closed  bool
	stopped bool
	idle    chan struct{} // closed when the last busy slot comes free, if set
}

// Start initialises Python if this is the first pool, starts the threads and loads
// the application; the error carries its traceback.
func Start(cfg Config) (*Pool, error) {
	if cfg.Threads < 1 {
		return nil, errors.New("python: threads must be at least 1")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := checkVersion(cfg.Python); err != nil {
		return nil, err
	}
	if err := start(cfg.Python); err != nil {
		return nil, err
	}
	fd, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if errno != 0 {
		return nil, fmt.Errorf("python: eventfd: %w", errno)
	}
	p := &Pool{cfg: cfg, id: poolIDs.Add(1), log: cfg.Log, efd: os.NewFile(fd, "python pool"), compl: make(chan struct{})}
	p.c = C.gantry_pool_new(C.int(cfg.Threads), C.int(fd))
	if p.c == nil {
		p.efd.Close()
		return nil, errors.New("python: out of memory")
	}
	pools.Store(p.id, p)
	go p.completions()
	for i := range cfg.Threads {
		p.threads = append(p.threads, newThread(p, i))
	}
	for range slotsFor(cfg.Threads) {
		s := &Slot{pool: p, c: C.gantry_job_new()}
		if s.c == nil {
			p.stopThreads()
			pools.Delete(p.id)
			return nil, errors.New("python: out of memory")
		}
		register(s)
		p.slots = append(p.slots, s)
		p.free = append(p.free, s)
	}
	ip, err := p.boot(p.threads[0])
	if err != nil {
		p.stopThreads()
		pools.Delete(p.id)
		return nil, err
	}
	p.cur = ip
	return p, nil
}

func newThread(p *Pool, idx int) *Thread {
	t := &Thread{pool: p, idx: idx, admin: make(chan *job), started: time.Now()}
	ready := make(chan struct{})
	go t.loop(ready)
	<-ready
	return t
}

// loop is the thread's life: serving requests in C, and coming back to Go only
// for admin work.
func (t *Thread) loop(ready chan<- struct{}) {
	runtime.LockOSThread()
	// Never unlocked: the goroutine's end ends the OS thread, with whatever
	// Python left in its thread-local storage.
	t.tid = syscall.Gettid()
	t.mainTS = C.gantry_new_thread()
	close(ready)
	for {
		C.gantry_thread_run(t.pool.c, C.int(t.idx), t.mainTS)
		j := <-t.admin
		if j.quit {
			C.gantry_drop_thread(t.mainTS)
			close(j.done)
			return
		}
		j.admin()
	}
}

// do runs f on the thread, in Go, once it is idle.
func (t *Thread) do(f func()) {
	t.adminMu.Lock()
	defer t.adminMu.Unlock()
	done := make(chan struct{})
	C.gantry_thread_to_go(t.pool.c, C.int(t.idx))
	t.admin <- &job{admin: func() { f(); close(done) }}
	<-done
}

// completions takes the requests the threads have served and tells each one's
// handler, which sends the response (Respond).
func (p *Pool) completions() {
	defer close(p.compl)
	var b [8]byte
	for {
		if _, err := p.efd.Read(b[:]); err != nil {
			return
		}
		for cj := C.gantry_take_done(p.c); cj != nil; {
			next := cj.next
			cj.next = nil
			s := lookup(int64(cj.h) >> 32)
			p.complete(s, cj)
			cj = next
		}
	}
}

// slotKeep is the most buffer a slot keeps between requests for the body and for
// the response: a few large requests leave no lasting memory in every slot.
const slotKeep = 64 << 10

func (p *Pool) complete(s *Slot, cj *C.gantry_job) {
	j := s.cur.Load()
	t := p.threads[cj.thread]
	if cj.rc != 0 {
		t.errors.Add(1)
		j.req.Log(1, "gantry's WSGI shim failed (traceback on stderr)")
	}
	// No callback of the app's reaches the request from now on.
	s.cur.Store(nil)
	p.mu.Lock()
	left := j.left
	j.completed = true
	p.mu.Unlock()
	// done before the slot is free: Stuck, which looks at done, then never
	// marks the slot's next request.
	close(j.done)
	if left {
		p.free1(s, j)
	}
}

// Respond sends the response the app returned whole, if it did, and frees s: the
// handler calls it once done is closed, unless it has called Leave. The response
// is written on the handler's goroutine, so that a client slow to read holds up
// only its own request.
func (p *Pool) Respond(s *Slot, done <-chan struct{}) {
	<-done
	j := s.fin // set by Serve on the handler's goroutine; no one else frees s now
	if cj := s.c; cj.rc == 0 && cj.out.nhead > 0 {
		out := &cj.out
		all := unsafe.Slice((*byte)(unsafe.Pointer(out.buf)), int(out.nhead+out.nbody))
		j.req.Head(all[:out.nhead], all[out.nhead:])
	}
	p.free1(s, j)
}

// Leave tells the pool the handler no longer waits for the request in s: a
// request still queued is taken back and never runs; else s is freed when the app
// returns (at once if it has), and what the app returned is dropped.
func (p *Pool) Leave(s *Slot, done <-chan struct{}) {
	p.mu.Lock()
	j := s.fin
	if j == nil || j.done != done {
		// Taken back from the queue by Stuck: freed already.
		p.mu.Unlock()
		return
	}
	if !j.completed {
		if C.gantry_cancel(p.c, s.c) != -2 {
			j.left = true
			p.mu.Unlock()
			return
		}
		s.fin = nil
		p.mu.Unlock()
		s.cur.Store(nil)
		close(j.done)
		p.finish(s, j.ip)
		return
	}
	p.mu.Unlock()
	p.free1(s, j)
}

// free1 frees s after its request j.
func (p *Pool) free1(s *Slot, j *job) {
	if cj := s.c; cj.out.cap > slotKeep || cj.bodycap > slotKeep {
		C.gantry_job_trim(cj, slotKeep)
	}
	p.finish(s, j.ip)
}

// boot loads the application on t: in a new sub-interpreter, or the main one.
func (p *Pool) boot(t *Thread) (*interp, error) {
	args := []string{p.cfg.App, p.cfg.Chdir, p.cfg.Python, strconv.FormatInt(-p.id, 10)}
	for k, v := range p.cfg.Env {
		args = append(args, k+"="+v)
	}
	var b []byte
	for _, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, fmt.Errorf("python: %q contains a NUL byte", a)
		}
		b = append(append(b, a...), 0)
	}
	cargs := C.CBytes(b)
	defer C.free(cargs)
	src := C.CString(shimSource)
	defer C.free(unsafe.Pointer(src))
	ip := newInterp(len(p.threads), t, !p.cfg.Main)
	var err error
	t.do(func() {
		sub := C.int(1)
		if p.cfg.Main {
			sub = 0
		}
		var ts *C.PyThreadState
		var cerr *C.char
		if C.gantry_boot(t.mainTS, sub, src, (*C.char)(cargs), C.Py_ssize_t(len(b)), &ts, &ip.handle, &cerr) != 0 {
			err = errors.New(C.GoString(cerr))
			C.free(unsafe.Pointer(cerr))
			return
		}
		ip.ts[t.idx] = ts
		ip.interp = C.PyThreadState_GetInterpreter(ts)
	})
	if err != nil {
		ip.free()
		return nil, err
	}
	if p.cfg.Main {
		for _, th := range p.threads {
			ip.ts[th.idx] = th.mainTS
		}
	}
	return ip, nil
}

// Acquire takes a free slot, waiting up to wait for one; at once ErrAllStuck if
// every thread is held by a request that timed out.
func (p *Pool) Acquire(ctx context.Context, wait time.Duration) (*Slot, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if p.nstuck == len(p.threads) {
		p.mu.Unlock()
		return nil, ErrAllStuck
	}
	if n := len(p.free); n > 0 {
		s := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return s, nil
	}
	ch := make(chan *Slot, 1)
	p.waiters = append(p.waiters, ch)
	p.mu.Unlock()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var why error
	select {
	case s := <-ch:
		if s == nil {
			return nil, ErrAllStuck
		}
		return s, nil
	case <-timer.C:
		why = ErrBusy
	case <-ctx.Done():
		why = ctx.Err()
	}
	p.mu.Lock()
	for i, w := range p.waiters {
		if w == ch {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.mu.Unlock()
			return nil, why
		}
	}
	p.mu.Unlock()
	// Handed a slot (or refused) just now: give it back.
	if s := <-ch; s != nil {
		p.release(s)
	}
	return nil, why
}

// Serve queues the request in s, which Acquire returned; done is closed when the
// app has returned. The handler then calls Respond, or Leave if it stopped
// waiting, to free s.
func (p *Pool) Serve(s *Slot, env, body []byte, inline bool, req Request) (done <-chan struct{}) {
	s.seq++
	j := &job{h: s.gid<<32 | int64(s.seq), req: req, done: make(chan struct{})}
	p.mu.Lock()
	ip := p.cur
	ip.inflight++
	j.ip = ip
	s.fin = j
	p.mu.Unlock()
	s.cur.Store(j)
	var cenv, cbody *C.char
	if len(env) > 0 {
		cenv = (*C.char)(unsafe.Pointer(unsafe.SliceData(env)))
	}
	if len(body) > 0 {
		cbody = (*C.char)(unsafe.Pointer(unsafe.SliceData(body)))
	}
	cinline := C.int(0)
	if inline {
		cinline = 1
	}
	if C.gantry_post(p.c, s.c, ip.interp, ip.cts, ip.handle, C.longlong(j.h), cenv, C.Py_ssize_t(len(env)), cbody, C.Py_ssize_t(len(body)), cinline) != 0 {
		// Out of memory for the copy: the app never saw the request.
		s.cur.Store(nil)
		req.Log(1, "python: out of memory for the request's environ and body")
		s.c.rc = -1
		p.mu.Lock()
		j.completed = true
		p.mu.Unlock()
		close(j.done)
	}
	return j.done
}

// Stuck marks the thread running the request of s and done, which timed out, as
// held until its app returns. A request no thread has taken yet is taken back: it
// never runs, s is free again, and Stuck reports false.
func (p *Pool) Stuck(s *Slot, done <-chan struct{}) bool {
	p.mu.Lock()
	select {
	case <-done:
		p.mu.Unlock()
		return true
	default:
	}
	if s.stuckOn != nil {
		p.mu.Unlock()
		return true
	}
	switch i := int(C.gantry_cancel(p.c, s.c)); {
	case i == -2:
		j := s.fin
		s.fin = nil
		p.mu.Unlock()
		s.cur.Store(nil)
		close(j.done)
		p.finish(s, j.ip)
		return false
	case i >= 0:
		t := p.threads[i]
		s.stuckOn = t
		if !t.stuck {
			t.stuck = true
			p.nstuck++
		}
		if p.nstuck == len(p.threads) {
			for _, w := range p.waiters {
				w <- nil
			}
			p.waiters = nil
		}
	}
	p.mu.Unlock()
	return true
}

// Failed counts a request s served that ended in an error, against the thread
// that ran it.
func (s *Slot) Failed() {
	if i := int(s.c.thread); i >= 0 && i < len(s.pool.threads) {
		s.pool.threads[i].errors.Add(1)
	}
}

func (p *Pool) release(s *Slot) {
	p.mu.Lock()
	p.releaseLocked(s)
	p.mu.Unlock()
}

func (p *Pool) releaseLocked(s *Slot) {
	if t := s.stuckOn; t != nil {
		s.stuckOn = nil
		t.stuck = false
		p.nstuck--
	}
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		w <- s
		return
	}
	p.free = append(p.free, s)
	if p.idle != nil && len(p.free) == len(p.slots) {
		close(p.idle)
		p.idle = nil
	}
}

// finish frees s after a request on ip, and ends ip if it was replaced and this
// was its last request.
func (p *Pool) finish(s *Slot, ip *interp) {
	p.mu.Lock()
	s.fin = nil
	ip.inflight--
	end := ip.retired && ip.inflight == 0
	p.releaseLocked(s)
	p.mu.Unlock()
	if end {
		p.end(ip)
	}
}

// end ends a sub-interpreter on the thread that made it, once that thread is free.
func (p *Pool) end(ip *interp) {
	if !ip.sub {
		return
	}
	p.ending.Add(1)
	go func() {
		defer p.ending.Done()
		var rc C.int
		ip.boot.do(func() {
			rc = C.gantry_end_interp(ip.ts[ip.boot.idx], ip.handle, ip.cts, C.int(len(ip.ts)), ip.boot.mainTS)
		})
		if rc != 0 {
			// Its memory stays with the threads the app left running in it.
			p.log.Warn("wsgi: old interpreter left in memory: threads the app started still run in it", "app", p.cfg.App)
			return
		}
		ip.free()
		p.log.Info("wsgi: old interpreter ended after its last request", "app", p.cfg.App)
	}()
}

// Reload loads the application anew in a fresh sub-interpreter; requests in flight
// finish on the old one, which then ends. With Main, new code needs a restart.
func (p *Pool) Reload(ctx context.Context, wait time.Duration) error {
	if p.cfg.Main {
		p.log.Warn("wsgi: interpreter = \"main\" keeps the loaded code: restart gantry to run new code", "app", p.cfg.App)
		return nil
	}
	// A slot held keeps one thread's share of requests away while it boots.
	s, err := p.Acquire(ctx, wait)
	if err != nil {
		return fmt.Errorf("python: reload: %w", err)
	}
	p.mu.Lock()
	t := p.threads[0]
	for _, th := range p.threads {
		if !th.stuck {
			t = th
			break
		}
	}
	p.mu.Unlock()
	ip, err := p.boot(t)
	p.release(s)
	if err != nil {
		return err
	}
	p.mu.Lock()
	old := p.cur
	p.cur = ip
	old.retired = true
	idle := old.inflight == 0
	p.mu.Unlock()
	if idle {
		p.end(old)
	}
	return nil
}

// Shutdown waits for the requests in flight (until ctx ends), ends the interpreter
// and stops the threads. A thread still in the app stays, as Python cannot be
// stopped from outside.
func (p *Pool) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	for _, w := range p.waiters {
		w <- nil
	}
	p.waiters = nil
	var idle chan struct{}
	if len(p.free) < len(p.slots) {
		idle = make(chan struct{})
		p.idle = idle
	}
	p.mu.Unlock()
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			return fmt.Errorf("python: shutdown: %d threads still in the app: %w", p.busyCount(), ctx.Err())
		}
	}
	p.mu.Lock()
	cur := p.cur
	cur.retired = true
	p.mu.Unlock()
	if cur.sub {
		p.end(cur)
	} else {
		p.threads[0].do(func() { C.gantry_release_handle(p.threads[0].mainTS, cur.handle) })
		cur.free()
	}
	p.ending.Wait()
	p.stopThreads()
	pools.Delete(p.id)
	return nil
}

func (p *Pool) busyCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.slots) - len(p.free)
}

func (p *Pool) stopThreads() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	for _, t := range p.threads {
		t.adminMu.Lock()
		done := make(chan struct{})
		C.gantry_thread_to_go(p.c, C.int(t.idx))
		t.admin <- &job{quit: true, done: done}
		<-done
		t.adminMu.Unlock()
	}
	p.efd.Close() // ends completions
	<-p.compl
	for _, s := range p.slots {
		unregister(s)
		C.gantry_job_free(s.c)
	}
	C.gantry_pool_free(p.c)
}

// ThreadInfo is one pool thread, for the dashboard.
type ThreadInfo struct {
	TID      int
	State    string // "ready", "busy", or "stuck": still in a request that timed out
	Requests uint64
	Errors   uint64
	Started  time.Time
}

// Threads returns a snapshot of the pool's threads.
func (p *Pool) Threads() []ThreadInfo {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return nil
	}
	out := make([]ThreadInfo, len(p.threads))
	for i, t := range p.threads {
		var served C.ulonglong
		busy := C.gantry_thread_busy(p.c, C.int(t.idx), &served) != 0
		st := "ready"
		switch {
		case t.stuck:
			st = "stuck"
		case busy:
			st = "busy"
		}
		out[i] = ThreadInfo{TID: t.tid, State: st, Started: t.started, Requests: uint64(served)}
	}
	p.mu.Unlock()
	for i, t := range p.threads {
		out[i].Errors = t.errors.Load()
	}
	return out
}
