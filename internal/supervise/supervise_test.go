package supervise

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// The test binary doubles as the worker program: SUPERVISE_HELPER selects its role.
func TestMain(m *testing.M) {
	switch os.Getenv("SUPERVISE_HELPER") {
	case "":
		os.Exit(m.Run())
	case "serve":
		helperServe(os.Args[len(os.Args)-1])
	case "fail":
		fmt.Fprintln(os.Stderr, "Traceback (most recent call last):")
		fmt.Fprintln(os.Stderr, "ModuleNotFoundError: No module named 'mysite'")
		os.Exit(3)
	}
}

// helperServe listens on sock and answers every connection with its pid. With
// SUPERVISE_IGNORE_TERM it ignores SIGTERM; with SUPERVISE_CHILD it forks a sleeper
// that writes its pid to that file.
func helperServe(sock string) {
	if os.Getenv("SUPERVISE_IGNORE_TERM") != "" {
		signal.Ignore(syscall.SIGTERM)
	}
	if f := os.Getenv("SUPERVISE_CHILD"); f != "" {
		c := exec.Command("sleep", "300")
		if err := c.Start(); err != nil {
			os.Exit(5)
		}
		os.WriteFile(f, []byte(strconv.Itoa(c.Process.Pid)), 0o644)
	}
	if f := os.Getenv("SUPERVISE_FAIL_IF"); f != "" {
		if _, err := os.Stat(f); err == nil {
			fmt.Fprintln(os.Stderr, "startup failure requested")
			os.Exit(4)
		}
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		os.Exit(6)
	}
	for n := 0; ; n++ {
		c, err := l.Accept()
		if err != nil {
			os.Exit(7)
		}
		// The first connection is the supervisor's readiness check.
		if n > 0 && os.Getenv("SUPERVISE_CRASH_ON_REQUEST") != "" {
			if os.Getenv("SUPERVISE_LONG_LINE") != "" {
				// A line longer than any buffer (a request dumped whole into the log).
				fmt.Fprintln(os.Stderr, strings.Repeat("x", 200<<10))
			}
			fmt.Fprintln(os.Stderr, "ZeroDivisionError: division by zero")
			os.Exit(2)
		}
		// Killed from outside mid-request (the OOM killer): a grandchild keeps
		// stderr open, so the gateway sees the broken connection before the
		// monitor can report the exit.
		if n > 0 && os.Getenv("SUPERVISE_KILLED_ON_REQUEST") != "" {
			holder := exec.Command("sleep", "300")
			holder.Stderr = os.Stderr
			if err := holder.Start(); err != nil {
				os.Exit(5)
			}
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		fmt.Fprintf(c, "%d\n", os.Getpid())
		c.Close()
	}
}

type harness struct {
	t     *testing.T
	dir   string
	mu    sync.Mutex
	spawn []time.Time
	env   []string
}

func newHarness(t *testing.T, env ...string) *harness {
	return &harness{t: t, dir: t.TempDir(), env: env}
}

func (h *harness) options(mode string) Options {
	return Options{
		Name: "test",
		Size: 2,
		Command: func(w *Worker) (*exec.Cmd, error) {
			h.mu.Lock()
			h.spawn = append(h.spawn, time.Now())
			h.mu.Unlock()
			sock := filepath.Join(h.dir, fmt.Sprintf("w%d-%d.sock", w.Slot, w.Generation))
			w.Data = sock
			cmd := exec.Command(os.Args[0], "-test.run=^$", sock)
			cmd.Env = append(append(os.Environ(), "SUPERVISE_HELPER="+mode), h.env...)
			return cmd, nil
		},
		Ready: func(ctx context.Context, w *Worker) error {
			return WaitDial(ctx, "unix", w.Data.(string))
		},
		Exited:       func(w *Worker) { os.Remove(w.Data.(string)) },
		StopTimeout:  200 * time.Millisecond,
		StartTimeout: 20 * time.Second,
		BackoffMin:   20 * time.Millisecond,
	}
}

func (h *harness) spawns() []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Time(nil), h.spawn...)
}

func start(t *testing.T, opts Options) *Pool {
	t.Helper()
	p, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return p
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// A zombie still has a /proc entry; its state field is Z.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(s[i+1:], " Z")
}

func pids(p *Pool) map[int]string {
	m := map[int]string{}
	for _, w := range p.Workers() {
		m[w.PID] = w.State
	}
	return m
}

func TestStartAcquireRelease(t *testing.T) {
	h := newHarness(t)
	opts := h.options("serve")
	opts.Concurrency = 2
	p := start(t, opts)
	infos := p.Workers()
	if len(infos) != 2 {
		t.Fatalf("got %d workers, want 2", len(infos))
	}
	for _, wi := range infos {
		if wi.State != StateReady || wi.PID == 0 || wi.RSSKB <= 0 || wi.Started.IsZero() {
			t.Errorf("worker info %+v: want ready with pid, rss and start time", wi)
		}
	}
	var got []*Worker
	per := map[int]int{}
	for range 4 {
		w, err := p.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, w)
		per[w.Slot]++
	}
	if per[0] != 2 || per[1] != 2 {
		t.Errorf("load spread %v, want 2 per worker", per)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire on a full pool = %v, want deadline exceeded", err)
	}
	if _, err := p.AcquireWithin(context.Background(), 50*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AcquireWithin on a full pool = %v, want deadline exceeded", err)
	}
	waited := make(chan *Worker)
	go func() {
		w, _ := p.Acquire(context.Background())
		waited <- w
	}()
	p.Release(got[0], OK)
	if w := <-waited; w != got[0] {
		t.Errorf("waiter got worker %v, want the released one", w)
	}
	for _, w := range got {
		p.Release(w, OK)
	}
}

func TestStartupErrorIsReportedOnceWithoutRespawn(t *testing.T) {
	h := newHarness(t)
	opts := h.options("fail")
	_, err := Start(context.Background(), opts)
	var se *StartError
	if !errors.As(err, &se) {
		t.Fatalf("Start = %v, want *StartError", err)
	}
	if !strings.Contains(se.Output, "ModuleNotFoundError: No module named 'mysite'") ||
		!strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("error %q lacks the worker's output or exit status", err)
	}
	if n := len(h.spawns()); n != opts.Size {
		t.Errorf("%d spawns, want %d (no respawn after a startup error)", n, opts.Size)
	}
}

func TestCrashRespawns(t *testing.T) {
	h := newHarness(t)
	p := start(t, h.options("serve"))
	before := p.Workers()[0]
	syscall.Kill(before.PID, syscall.SIGKILL)
	peertest.WaitFor(t, 15*time.Second, "respawn", func() bool {
		ws := p.Workers()
		return len(ws) == 2 && ws[0].PID != before.PID && ws[0].State == StateReady && ws[0].Restarts == 1
	})
	// The pool still serves from both slots.
	w1, _ := p.Acquire(context.Background())
	w2, _ := p.Acquire(context.Background())
	if w1.Slot == w2.Slot {
		t.Errorf("both requests went to slot %d", w1.Slot)
	}
	p.Release(w1, OK)
	p.Release(w2, OK)
}

func TestFailingRespawnBacksOff(t *testing.T) {
	h := newHarness(t)
	flag := filepath.Join(h.dir, "fail")
	h.env = append(h.env, "SUPERVISE_FAIL_IF="+flag)
	opts := h.options("serve")
	opts.Size = 1
	p := start(t, opts)
	os.WriteFile(flag, nil, 0o644)
	syscall.Kill(p.Workers()[0].PID, syscall.SIGKILL)
	peertest.WaitFor(t, 15*time.Second, "four failed respawns", func() bool { return len(h.spawns()) >= 5 })
	s := h.spawns()
	// Each retry waits at least twice as long as the one before: never a tight loop.
	for i := 3; i < len(s); i++ {
		prev, gap := s[i-1].Sub(s[i-2]), s[i].Sub(s[i-1])
		if gap < opts.BackoffMin<<(i-3) {
			t.Errorf("retry %d came %v after the previous one (gap before %v): backoff not growing", i, gap, prev)
		}
	}
	// Fixing the cause brings the worker back.
	os.Remove(flag)
	peertest.WaitFor(t, 15*time.Second, "recovery", func() bool {
		ws := p.Workers()
		return len(ws) == 1 && ws[0].State == StateReady
	})
}

func TestMaxRequestsRecyclesWithoutLosingCapacity(t *testing.T) {
	h := newHarness(t)
	opts := h.options("serve")
	opts.Size = 1
	opts.MaxRequests = 4
	p := start(t, opts)
	first := p.Workers()[0].PID
	for range 5 { // the limit is drawn from [4, 5]
		w, err := p.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		p.Release(w, OK)
	}
	peertest.WaitFor(t, 15*time.Second, "recycled worker", func() bool {
		ws := p.Workers()
		return len(ws) == 1 && ws[0].PID != first && ws[0].State == StateReady
	})
	peertest.WaitFor(t, 15*time.Second, "old worker gone", func() bool { return !alive(first) })
}

func TestReloadReplacesOneByOneAndDrains(t *testing.T) {
	h := newHarness(t)
	p := start(t, h.options("serve"))
	old := pids(p)
	held, _ := p.Acquire(context.Background())
	heldPID := held.PID
	if err := p.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	now := pids(p)
	if now[heldPID] != StateRetiring || !alive(heldPID) {
		t.Fatalf("worker with a request in flight: state %q alive %v, want retiring and alive", now[heldPID], alive(heldPID))
	}
	for pid := range old {
		if pid != heldPID {
			peertest.WaitFor(t, 15*time.Second, "idle old worker stopped", func() bool { return !alive(pid) })
		}
	}
	// New requests only reach new workers.
	for range 4 {
		w, err := p.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, wasOld := old[w.PID]; wasOld {
			t.Errorf("request routed to old worker %d after reload", w.PID)
		}
		p.Release(w, OK)
	}
	p.Release(held, OK)
	peertest.WaitFor(t, 15*time.Second, "drained worker stopped", func() bool { return !alive(heldPID) })
}

func TestReloadFailureKeepsOldWorkers(t *testing.T) {
	h := newHarness(t)
	flag := filepath.Join(h.dir, "fail")
	h.env = append(h.env, "SUPERVISE_FAIL_IF="+flag)
	p := start(t, h.options("serve"))
	old := pids(p)
	os.WriteFile(flag, nil, 0o644)
	err := p.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "startup failure requested") {
		t.Fatalf("Reload = %v, want the startup error", err)
	}
	for pid, state := range pids(p) {
		if _, ok := old[pid]; !ok || state != StateReady {
			t.Errorf("after failed reload: worker %d %s, want the old ready workers", pid, state)
		}
	}
}

func TestStuckWorkerKilledAndReplaced(t *testing.T) {
	h := newHarness(t, "SUPERVISE_IGNORE_TERM=1")
	opts := h.options("serve")
	opts.Size = 1
	opts.Concurrency = 2
	opts.StopTimeout = time.Hour // only SIGKILL can stop it in time
	p := start(t, opts)
	a, _ := p.Acquire(context.Background())
	b, _ := p.Acquire(context.Background())
	pid := a.PID
	p.Release(a, Stuck)
	// The other request in flight keeps its worker alive until it is done.
	if !alive(pid) {
		t.Fatal("stuck worker killed while another request was in flight")
	}
	peertest.WaitFor(t, 15*time.Second, "replacement", func() bool {
		for p2, st := range pids(p) {
			if p2 != pid && st == StateReady {
				return true
			}
		}
		return false
	})
	p.Release(b, OK)
	peertest.WaitFor(t, 15*time.Second, "stuck worker killed", func() bool { return !alive(pid) })
	// The replacement ignores SIGTERM too: only a forced shutdown ends it quickly.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	p.Shutdown(ctx)
}

func TestShutdownWaitsForInflightAndKillsGroup(t *testing.T) {
	h := newHarness(t)
	child := filepath.Join(h.dir, "child.pid")
	h.env = append(h.env, "SUPERVISE_CHILD="+child)
	opts := h.options("serve")
	opts.Size = 1
	p, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(child)
	childPID, _ := strconv.Atoi(string(b))
	if childPID == 0 || !alive(childPID) {
		t.Fatal("helper's child not running")
	}
	w, _ := p.Acquire(context.Background())
	done := make(chan error)
	go func() { done <- p.Shutdown(context.Background()) }()
	if _, err := p.Acquire(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Acquire during shutdown = %v, want ErrClosed", err)
	}
	select {
	case <-done:
		t.Fatal("Shutdown returned with a request in flight")
	case <-time.After(100 * time.Millisecond):
	}
	if !alive(w.PID) {
		t.Fatal("worker stopped with a request in flight")
	}
	p.Release(w, OK)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if alive(w.PID) {
		t.Error("worker alive after Shutdown")
	}
	peertest.WaitFor(t, 15*time.Second, "worker's child killed with its process group", func() bool { return !alive(childPID) })
}

func TestShutdownContextForcesKill(t *testing.T) {
	h := newHarness(t, "SUPERVISE_IGNORE_TERM=1")
	opts := h.options("serve")
	opts.StopTimeout = time.Hour
	p, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ws := p.Workers()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want deadline exceeded", err)
	}
	for _, w := range ws {
		if alive(w.PID) {
			t.Errorf("worker %d survived forced shutdown", w.PID)
		}
	}
}

// TestCrashesCountOnlyUnexpectedExits: the crash count behind the dashboard's
// crash-loop alert must not move for what gantry does on purpose.
func TestCrashesCountOnlyUnexpectedExits(t *testing.T) {
	// request sends one request through the pool the way a gateway does, and
	// releases it as the gateway would see it.
	request := func(t *testing.T, p *Pool) {
		w, err := p.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("unix", w.Data.(string))
		if err != nil {
			p.Release(w, Failed)
			return
		}
		b := make([]byte, 32)
		n, _ := c.Read(b)
		c.Close()
		if n == 0 {
			p.Release(w, Failed)
			return
		}
		p.Release(w, OK)
	}
	cases := []struct {
		name    string
		env     []string
		max     uint64
		act     func(t *testing.T, p *Pool)
		crashes int
		status  string // in the last crash's Status
		stderr  string // the last crash's Stderr
	}{
		{name: "killed from outside", act: func(t *testing.T, p *Pool) {
			syscall.Kill(p.Workers()[0].PID, syscall.SIGKILL)
		}, crashes: 1, status: "signal: killed"},
		{name: "dies during a request", env: []string{"SUPERVISE_CRASH_ON_REQUEST=1"}, act: request,
			crashes: 1, status: "exit status 2", stderr: "ZeroDivisionError: division by zero"},
		{name: "dies after a 200 KB stderr line", env: []string{"SUPERVISE_CRASH_ON_REQUEST=1", "SUPERVISE_LONG_LINE=1"}, act: request,
			crashes: 1, status: "exit status 2", stderr: "ZeroDivisionError: division by zero"},
		{name: "two reloads", act: func(t *testing.T, p *Pool) {
			for range 2 {
				if err := p.Reload(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{name: "max_requests recycling", max: 2, act: func(t *testing.T, p *Pool) {
			for range 6 {
				request(t, p)
			}
		}},
		{name: "stuck worker replaced", act: func(t *testing.T, p *Pool) {
			w, _ := p.Acquire(context.Background())
			p.Release(w, Stuck)
		}},
		{name: "broken connection, live worker", act: func(t *testing.T, p *Pool) {
			w, _ := p.Acquire(context.Background())
			p.Release(w, Failed)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.env...)
			opts := h.options("serve")
			opts.Size = 1
			opts.MaxRequests = tc.max
			p := start(t, opts)
			first := p.Workers()[0].PID
			tc.act(t, p)
			// Every case ends with a new ready worker and the first one gone: only
			// then has the monitor seen the exit.
			peertest.WaitFor(t, 15*time.Second, "a new worker and the old one reaped", func() bool {
				ws := p.Workers()
				return len(ws) == 1 && ws[0].PID != first && ws[0].State == StateReady && !alive(first)
			})
			peertest.WaitFor(t, 15*time.Second, "the exit seen", func() bool {
				return p.Health().Crashes >= tc.crashes && len(p.Workers()) == 1
			})
			hl := p.Health()
			if hl.Crashes != tc.crashes {
				t.Fatalf("crashes = %d, want %d (last %+v)", hl.Crashes, tc.crashes, hl.Last)
			}
			if tc.crashes > 0 {
				if !strings.Contains(hl.Last.Status, tc.status) || hl.Last.Stderr != tc.stderr || hl.Last.PID != first {
					t.Errorf("last crash %+v, want pid %d, status %q, stderr %q", hl.Last, first, tc.status, tc.stderr)
				}
			}
		})
	}
}

func TestShutdownIsNoCrash(t *testing.T) {
	h := newHarness(t)
	p := start(t, h.options("serve"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if c := p.Health().Crashes; c != 0 {
		t.Errorf("crashes after shutdown = %d, want 0", c)
	}
}

func TestFailedRespawnsCountAsCrashes(t *testing.T) {
	h := newHarness(t)
	flag := filepath.Join(h.dir, "fail")
	h.env = append(h.env, "SUPERVISE_FAIL_IF="+flag)
	opts := h.options("serve")
	opts.Size = 1
	p := start(t, opts)
	os.WriteFile(flag, nil, 0o644)
	syscall.Kill(p.Workers()[0].PID, syscall.SIGKILL)
	peertest.WaitFor(t, 15*time.Second, "a crash and two failed respawns", func() bool { return p.Health().Crashes >= 3 })
	last := p.Health().Last
	if last.Stderr != "startup failure requested" || !strings.Contains(last.Status, "exit status 4") {
		t.Errorf("last crash %+v, want the startup failure's status and stderr", last)
	}
}

func TestHealthQueue(t *testing.T) {
	h := newHarness(t)
	opts := h.options("serve")
	opts.Size = 1
	p := start(t, opts)
	if hl := p.Health(); hl.Queued != 0 || hl.Busy != 0 || !hl.Since.IsZero() {
		t.Fatalf("idle pool health %+v, want no queue", hl)
	}
	w, _ := p.Acquire(context.Background())
	got := make(chan *Worker)
	go func() {
		w2, _ := p.Acquire(context.Background())
		got <- w2
	}()
	peertest.WaitFor(t, 5*time.Second, "a request queued", func() bool { return p.Health().Queued == 1 })
	if hl := p.Health(); hl.Busy != 1 || hl.Since.IsZero() {
		t.Errorf("saturated pool health %+v, want 1 busy and a queue start", hl)
	}
	p.Release(w, OK)
	p.Release(<-got, OK)
	if hl := p.Health(); hl.Queued != 0 || !hl.Since.IsZero() {
		t.Errorf("drained pool health %+v, want no queue", hl)
	}
}

// TestExternalKillDuringRequestIsACrash: a worker SIGKILLed from outside while it
// serves a request is a crash, though the gateway notices first and the pool then
// signals the (already dead) process itself.
func TestExternalKillDuringRequestIsACrash(t *testing.T) {
	h := newHarness(t, "SUPERVISE_KILLED_ON_REQUEST=1")
	opts := h.options("serve")
	opts.Size = 1
	p := start(t, opts)
	w, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unix", w.Data.(string))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Read(make([]byte, 32)); n != 0 {
		t.Fatalf("the worker answered (%d bytes); want it killed mid-request", n)
	}
	c.Close()
	peertest.WaitFor(t, 10*time.Second, "the worker dead", func() bool { return !alive(w.PID) })
	p.Release(w, Failed)
	peertest.WaitFor(t, 15*time.Second, "the killed worker reaped and replaced", func() bool {
		ws := p.Workers()
		_, old := pids(p)[w.PID]
		return len(ws) == 1 && ws[0].PID != w.PID && ws[0].State == StateReady && !old
	})
	if hl := p.Health(); hl.Crashes != 1 || !strings.Contains(hl.Last.Status, "killed") || hl.Last.PID != w.PID {
		t.Errorf("health after an outside SIGKILL mid-request: crashes %d, last %+v; want 1 crash of pid %d, signal: killed",
			hl.Crashes, hl.Last, w.PID)
	}
}

// TestInflightQueueAndSpread: Workers says which worker is busy, Queued counts
// the requests waiting for one, and one request at a time always goes to the
// first worker (the dashboard explains that spread).
func TestInflightQueueAndSpread(t *testing.T) {
	h := newHarness(t)
	opts := h.options("serve")
	opts.Concurrency = 1
	p := start(t, opts)
	for range 5 {
		w, err := p.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if w.Slot != 0 {
			t.Fatalf("one request at a time went to slot %d, want the first", w.Slot)
		}
		p.Release(w, OK)
	}
	a, _ := p.Acquire(context.Background())
	b, _ := p.Acquire(context.Background())
	for _, wi := range p.Workers() {
		if wi.Inflight != 1 {
			t.Errorf("worker %+v: want 1 request in flight", wi)
		}
	}
	got := make(chan *Worker)
	go func() {
		w, _ := p.Acquire(context.Background())
		got <- w
	}()
	peertest.WaitFor(t, 10*time.Second, "a queued request", func() bool { return p.Health().Queued == 1 })
	p.Release(a, OK)
	c := <-got
	if q := p.Health().Queued; q != 0 {
		t.Errorf("queued %d after the release, want 0", q)
	}
	p.Release(b, OK)
	p.Release(c, OK)
	busy := 0
	for _, wi := range p.Workers() {
		busy += wi.Inflight
	}
	if busy != 0 {
		t.Errorf("%d in flight after every release", busy)
	}
}

// A live worker costs gantry no OS thread: its monitor waits on a pidfd in Go's
// poller. A blocking wait held a thread per worker, and Go never gives a thread
// back, so a reload (two pools alive at once) left gantry with more threads for
// good: the soak's thread count rose step by step.
func TestLiveWorkersHoldNoThread(t *testing.T) {
	threads := func() int {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Threads:"); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				return n
			}
		}
		t.Fatal("no Threads: line in /proc/self/status")
		return 0
	}
	const size = 20
	before := threads()
	opts := newHarness(t).options("serve")
	opts.Size = size
	p := start(t, opts)
	if n := len(pids(p)); n != size {
		t.Fatalf("%d workers, want %d", n, size)
	}
	// Work for every P: a thread blocked in a wait keeps its M, so running
	// this needs new threads unless the monitors hold none.
	var wg sync.WaitGroup
	for range 2 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); {
				runtime.Gosched()
			}
		})
	}
	wg.Wait()
	if grew := threads() - before; grew >= size/2 {
		t.Errorf("threads grew by %d with %d live workers: a thread is held per worker", grew, size)
	}
}
