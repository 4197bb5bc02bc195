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
// The supervisor closes cmd.ExtraFiles, and cmd.Stdin when it is a file, in the
// parent after the process started, puts
// the child in its own process group, asks the kernel to kill it if gantry dies
// (Pdeathsig) and logs its stdout (info) and stderr (error) line by line.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
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
	// Limits bound each worker's memory and CPU time.
	Limits Limits
	// PrivateTmp gives each worker process a temp directory of its own (TMPDIR),
	// removed when the process has exited: what a killed worker left there (a
	// half-read upload php-cgi spooled) does not pile up.
	PrivateTmp bool
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
	Errors   uint64 // requests that failed in the app (embedded Python threads)
	RSSKB    int64
	Started  time.Time
	Restarts int
	// Inflight is the requests the worker is answering now.
	Inflight int
}

// Crash is a worker that exited when the pool did not stop it, or a respawn that
// failed to start: what a person needs to see to tell why.
type Crash struct {
	Time   time.Time
	Slot   int
	PID    int
	Status string // "exit status 1", "signal: killed", or the startup error
	Stderr string // the last line the worker wrote to stderr, if any
}

// Health is a pool's state as a whole, for alerts: its unexpected exits and
// whether requests are waiting for a worker.
type Health struct {
	Size        int
	Concurrency int
	// Crashes counts unexpected exits and failed respawns since Start; a reload, a
	// max_requests recycle, a stuck worker replaced and a shutdown are planned and
	// not counted.
	Crashes int
	Last    Crash     // zero when Crashes is 0
	Busy    int       // requests in flight
	Queued  int       // requests waiting for a free worker
	Since   time.Time // when the current queue began; zero when Queued is 0
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
	limit    uint64         // max requests for this incarnation, 0 = none
	kill     bool           // retiring because stuck: SIGKILL, no grace
	replaced bool           // a replacement has been requested for it
	failed   bool           // a request saw it break (Release with Failed)
	sent     syscall.Signal // the last signal the pool sent it, 0 if none
	done     chan struct{}  // closed when the process has exited and been reaped
	exitErr  error
	killedBy string // the limit that ended the process, if one did
	tmp      string // the process's private TMPDIR, if any
	out      *outputLog
}

type slot struct {
	current  *Worker // the worker that receives traffic; nil while respawning
	restarts int
	crashes  int // unexpected exits and failed respawns; planned stops are not counted
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
	queued  time.Time // when waiters last went from empty to non-empty
	crash   Crash     // the latest unexpected exit
	closed  bool
	limited map[string]uint64 // workers ended by a limit, by reason
	tmpRoot string            // holds the workers' private temp directories
	wg      sync.WaitGroup    // background goroutines (monitors, respawns)
}
