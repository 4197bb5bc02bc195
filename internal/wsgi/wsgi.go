// Package wsgi runs a Python WSGI application (PEP 3333) in daemon mode: a supervised
// pool of Python processes, each running gantry's own stdlib-only worker (worker.py,
// embedded in the binary) with a number of threads, reached over private unix sockets
// with the frame protocol of protocol.go.
//
// gantry reads small request bodies before it takes a worker (so a slow client never
// holds a Python thread), streams large ones, sends the environ in marshal format,
// and streams the response back as the application produces it. wsgi.file_wrapper
// hands regular files back to gantry, which sends them with sendfile.
//
// In embedded mode (embedded.go, build tag python) the application runs inside
// gantry instead, on the interpreter threads of internal/wsgi/pyembed, with the same
// environ and the same checks of its response.
package wsgi

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"gantry/internal/config"
	"gantry/internal/supervise"
)

//go:embed worker.py
var workerSource string

// Options configures one WSGI route. Its keys are a wsgi route's; the fields without
// one are set by code.
type Options struct {
	// App is "module:callable" (callable defaults to "application") or a path to a
	// .py file that defines application.
	App string `toml:"wsgi"`
	// Python is the interpreter; a virtualenv's python selects the venv. Default:
	// python3 on PATH.
	Python string `toml:"python"`
	// Chdir is the workers' working directory, first on sys.path.
	Chdir string `toml:"chdir"`
	// Processes is the number of worker processes (default 2).
	Processes int `toml:"processes"`
	// Threads is how many requests each process serves at once (default 4).
	Threads int `toml:"threads"`
	// MaxRequests recycles a worker after about that many requests (0 = never).
	MaxRequests int `toml:"max_requests"`
	// Timeout bounds a request: waiting for a worker, for the response to start, and
	// each pause in a streamed response (default 60s). A worker that overruns it is
	// replaced; the client gets 504.
	Timeout config.Duration `toml:"timeout"`
	// Env is added to the workers' process environment (DJANGO_SETTINGS_MODULE).
	Env config.Strings `toml:"env"`
	// User runs the workers as this user (its groups, its primary group unless
	// Group names another). gantry must run as root or hold CAP_SETUID and
	// CAP_SETGID.
	User string `toml:"user"`
	// Group runs the workers with this primary group.
	Group string `toml:"group"`
	// MaxMemory caps each worker's address space ("512MB"; RLIMIT_AS, so above
	// its VSZ). 0 = no limit.
	MaxMemory config.Size `toml:"max_memory"`
	// MaxCPU caps the CPU time each worker may use in its life ("30s"; RLIMIT_CPU):
	// past it the process is stopped and replaced. 0 = no limit.
	MaxCPU config.Duration `toml:"max_cpu"`

	// Reload = "auto" restarts the workers when a .py file under Chdir changes;
	// "off" (the default) leaves them until gantry reloads.
	Reload string `toml:"reload"`
	// Mode is "daemon" (the default): the app runs in worker processes that gantry
	// supervises. "embedded" runs it inside gantry's process, in Python linked into
	// gantry, and needs a gantry built with -tags python.
	Mode string `toml:"mode"`
	// Interpreter, in embedded mode, is "sub" (the default): the app gets a
	// sub-interpreter of its own, and a reload loads new code in a fresh one while
	// requests in flight finish on the old; or "main": the main interpreter, for C
	// extensions that break in sub-interpreters, where new code needs a restart.
	Interpreter string `toml:"interpreter"`
	// Route is the route's path: a prefix route mounts the app there (SCRIPT_NAME is
	// the prefix without its trailing slash, PATH_INFO the rest).
	Route string `toml:"-"`
	// DocumentRoot is the site's root, for DOCUMENT_ROOT.
	DocumentRoot string `toml:"-"`
	// ServerSoftware is SERVER_SOFTWARE.
	ServerSoftware string `toml:"-"`

	// Body is the request_buffering key; Sendfile the sendfile_root key.
	config.Body
	config.Sendfile
}

// inlineBody is the largest request body read whole before a worker is taken.
const inlineBody = 64 << 10

// Handler serves one WSGI application.
type Handler struct {
	opts      Options
	log       *slog.Logger
	pool      *supervise.Pool
	dir       string // private to gantry: the workers' sockets
	scriptDir string // the worker's source, readable by the app's user
	script    string
	prefix    string // route prefix to strip, without trailing slash
	static    []byte // marshal of the environ keys that never change
	bufs      sync.Pool
	stopAuto  context.CancelFunc
	autoDone  chan struct{}
	py        embedded // mode = "embedded": the interpreter's threads instead of pool
}

// embedded is an application running in gantry's own process (embedded.go, build
// tag python).
type embedded interface {
	serve(h *Handler, w http.ResponseWriter, r *http.Request)
	reload(ctx context.Context) error
	shutdown(ctx context.Context) error
	workers() []supervise.WorkerInfo
}

// startEmbedded starts an embedded application; nil in a gantry built without
// Python.
var startEmbedded func(h *Handler) (embedded, error)

// New starts the workers and returns once all of them imported the application, or
// with an error that carries the Python traceback and a hint.
func New(ctx context.Context, opts Options, logger *slog.Logger) (*Handler, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.App == "" {
		return nil, errors.New("wsgi: no application (wsgi = \"module:callable\")")
	}
	if opts.Mode == modeEmbedded && startEmbedded == nil {
		return nil, errEmbedded
	}
	if opts.Python == "" {
		opts.Python = "python3"
	}
	python, err := exec.LookPath(opts.Python)
	if err != nil {
		return nil, fmt.Errorf("wsgi: python %q not found: %w (install python3 or set python = \"/path/to/venv/bin/python\")", opts.Python, err)
	}
	opts.Python = python
	if opts.Chdir == "" {
		if opts.Chdir, err = os.Getwd(); err != nil {
			return nil, fmt.Errorf("wsgi: working directory: %w", err)
		}
	}
	if st, err := os.Stat(opts.Chdir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("wsgi: chdir %q is not a directory", opts.Chdir)
	}
	opts.defaults()
	if opts.Processes < 1 || opts.Threads < 1 {
		return nil, errors.New("wsgi: processes and threads must be at least 1")
	}
	if opts.Mode == modeEmbedded {
		return newEmbedded(ctx, opts, logger)
	}
	cred, err := supervise.RunAs(opts.User, opts.Group)
	if err != nil {
		return nil, fmt.Errorf("wsgi: %w", err)
	}
	limits := supervise.Limits{Memory: int64(opts.MaxMemory), CPU: opts.MaxCPU.D()}
	if err := limits.Check(cred); err != nil {
		return nil, fmt.Errorf("wsgi: %w", err)
	}
	// The sockets live in a directory only gantry opens (0700): each worker gets its
	// listening socket as a descriptor, so no worker, whatever user it runs as,
	// can reach another app's sockets.
	dir, err := os.MkdirTemp("", "gantry-wsgi-")
	if err != nil {
		return nil, fmt.Errorf("wsgi: socket directory: %w", err)
	}
	// The worker runs from a file rather than `python -c SOURCE`, so that ps shows
	// a short command line naming the app. It is gantry's own public source, kept
	// apart from the sockets and readable by the app's user.
	scriptDir, err := writeWorker()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	h := &Handler{opts: opts, log: logger, dir: dir, scriptDir: scriptDir,
		script: filepath.Join(scriptDir, workerFile)}
	h.setPrefix()
	h.static = appendStatic(nil, opts)
	env := os.Environ()
	for k, v := range opts.Env {
		env = append(env, k+"="+v)
	}
	env = append(env, "PYTHONUNBUFFERED=1")
	h.pool, err = supervise.Start(ctx, supervise.Options{
		Name:        fmt.Sprintf("wsgi %s", opts.App),
		Credential:  cred,
		PrivateTmp:  opts.Env["TMPDIR"] == "",
		Limits:      limits,
		Size:        opts.Processes,
		Concurrency: opts.Threads,
		MaxRequests: uint64(max(opts.MaxRequests, 0)),
		Logger:      logger,
		Command: func(w *supervise.Worker) (*exec.Cmd, error) {
			return h.command(w, env)
		},
		Ready: func(ctx context.Context, w *supervise.Worker) error {
			return w.Data.(*workerData).waitReady(ctx)
		},
		Exited: func(w *supervise.Worker) {
			w.Data.(*workerData).close()
		},
	})
	if err != nil {
		h.removeDirs()
		return nil, startError(opts, err)
	}
	if opts.Reload == "auto" {
		h.startAutoReload(ctx)
	}
	return h, nil
}

func newEmbedded(ctx context.Context, opts Options, logger *slog.Logger) (*Handler, error) {
	// One process: wsgi.multiprocess is false.
	opts.Processes = 1
	h := &Handler{opts: opts, log: logger}
	h.setPrefix()
	h.static = appendStatic(nil, opts)
	py, err := startEmbedded(h)
	if err != nil {
		return nil, err
	}
	h.py = py
	if opts.Reload == "auto" {
		h.startAutoReload(ctx)
	}
	return h, nil
}

func (h *Handler) setPrefix() {
	if p := strings.TrimSuffix(h.opts.Route, "/"); strings.HasPrefix(p, "/") && !strings.ContainsAny(p, "*") {
		h.prefix = p
	}
}

func (h *Handler) startAutoReload(ctx context.Context) {
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.stopAuto, h.autoDone = cancel, make(chan struct{})
	go h.autoReload(actx)
}

const workerFile = "gantry_wsgi_worker.py"

// writeWorker writes the worker's source into a fresh directory that every user
// may read (the source is gantry's and public) and none but gantry may change.
func writeWorker() (string, error) {
	dir, err := os.MkdirTemp("", "gantry-wsgi-worker-")
	if err != nil {
		return "", fmt.Errorf("wsgi: worker directory: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("wsgi: worker directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, workerFile), []byte(workerSource), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("wsgi: write worker: %w", err)
	}
	return dir, nil
}

func (h *Handler) removeDirs() {
	os.RemoveAll(h.dir)
	os.RemoveAll(h.scriptDir)
}

// startError turns a worker's startup failure into one message with the traceback
// and what to check.
func startError(o Options, err error) error {
	var se *supervise.StartError
	if !errors.As(err, &se) {
		return fmt.Errorf("wsgi: %s: %w", o.App, err)
	}
	return fmt.Errorf("wsgi: cannot start %q with %s in %s: %v\n%s\nhint: %s",
		o.App, o.Python, o.Chdir, se.Err, se.Output, hint(o, se.Output))
}

// hint says what to check for the startup failure whose output is out.
func hint(o Options, out string) string {
	hint := "check python (a virtualenv's python selects the venv), chdir and the app's module:callable"
	module := strings.SplitN(strings.SplitN(o.App, ":", 2)[0], ".", 2)[0]
	switch {
	case strings.Contains(out, "needs Python 3.8"):
		hint = "gantry's worker needs Python 3.8 or newer: set python to a newer interpreter"
	case strings.Contains(out, "No module named '"+module+"'") || strings.Contains(out, "No such file or directory"):
		hint = fmt.Sprintf("chdir (%s) must be the directory that contains %q; set chdir", o.Chdir, module)
	case strings.Contains(out, "ModuleNotFoundError"):
		hint = fmt.Sprintf("%s cannot import a module the app needs: is this the right python? "+
			"Point python at your virtualenv's interpreter (e.g. /srv/app/venv/bin/python)", o.Python)
	case strings.Contains(out, "DJANGO_SETTINGS_MODULE") || strings.Contains(out, "ImproperlyConfigured"):
		hint = "Django's settings are not found or invalid: set env = { DJANGO_SETTINGS_MODULE = \"mysite.settings\" } and check chdir"
	}
	return hint
}

// workerData is what gantry keeps about one worker process.
type workerData struct {
	sock  string
	ready *os.File
	mu    sync.Mutex
	idle  []*wconn
	gone  bool
}

type wconn struct {
	c  *net.UnixConn
	fr *frameReader
}

func (h *Handler) command(w *supervise.Worker, env []string) (*exec.Cmd, error) {
	sock := filepath.Join(h.dir, fmt.Sprintf("w%d-%d.sock", w.Slot, w.Generation))
	os.Remove(sock)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", sock, err)
	}
	l.SetUnlinkOnClose(false)
	lf, err := l.File()
	l.Close()
	if err != nil {
		os.Remove(sock)
		return nil, fmt.Errorf("listener %s: %w", sock, err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		lf.Close()
		os.Remove(sock)
		return nil, fmt.Errorf("ready pipe: %w", err)
	}
	w.Data = &workerData{sock: sock, ready: pr}
	cmd := exec.Command(h.opts.Python, h.script, h.opts.App, strconv.Itoa(h.opts.Threads))
	cmd.Dir = h.opts.Chdir
	cmd.Env = env
	cmd.ExtraFiles = []*os.File{lf, pw}
	return cmd, nil
}

func (d *workerData) waitReady(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { d.ready.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(d.ready, buf, 6)
	if err == nil && string(buf[:n]) == "ready\n" {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("worker exited before the application was ready")
}

func (d *workerData) get(ctx context.Context) (*wconn, error) {
	d.mu.Lock()
	if n := len(d.idle); n > 0 {
		c := d.idle[n-1]
		d.idle = d.idle[:n-1]
		d.mu.Unlock()
		return c, nil
	}
	d.mu.Unlock()
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "unix", d.sock)
	if err != nil {
		return nil, fmt.Errorf("wsgi: dial worker %s: %w", d.sock, err)
	}
	uc := c.(*net.UnixConn)
	return &wconn{c: uc, fr: newFrameReader(uc)}, nil
}

func (d *workerData) put(c *wconn) {
	d.mu.Lock()
	if !d.gone {
		d.idle = append(d.idle, c)
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	c.close()
}

func (d *workerData) close() {
	d.mu.Lock()
	idle := d.idle
	d.idle, d.gone = nil, true
	d.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
	d.ready.Close()
	os.Remove(d.sock)
}

func (c *wconn) close() {
	c.fr.closeFDs()
	c.c.Close()
}

// Shutdown lets in-flight requests finish, then stops the workers.
func (h *Handler) Shutdown(ctx context.Context) error {
	if h.stopAuto != nil {
		h.stopAuto()
		<-h.autoDone
	}
	if h.py != nil {
		return h.py.shutdown(ctx)
	}
	err := h.pool.Shutdown(ctx)
	h.removeDirs()
	if err != nil {
		return fmt.Errorf("wsgi: %w", err)
	}
	return nil
}

// Reload replaces the workers one by one, each new one ready before the old one
// stops taking requests; if the new code fails to import, the old workers stay. In
// embedded mode the new code loads in a fresh sub-interpreter the same way.
func (h *Handler) Reload(ctx context.Context) error {
	if h.py != nil {
		return h.py.reload(ctx)
	}
	if err := h.pool.Reload(ctx); err != nil {
		return startError(h.opts, err)
	}
	return nil
}

// Workers returns a snapshot of the worker processes for the dashboard.
func (h *Handler) Workers() []supervise.WorkerInfo {
	if h.py != nil {
		return h.py.workers()
	}
	return h.pool.Workers()
}

// Health is the pool's crash count and queue, for the dashboard's alerts.
func (h *Handler) Health() supervise.Health {
	if h.py != nil {
		// An embedded app's threads never exit: no crashes, and a request that
		// finds every thread stuck is refused at once rather than queued.
		ws := h.py.workers()
		hl := supervise.Health{Size: len(ws), Concurrency: 1}
		for _, w := range ws {
			if w.State != supervise.StateReady {
				hl.Busy++
			}
		}
		return hl
	}
	return h.pool.Health()
}

// LimitKills counts the workers that max_memory or max_cpu ended, by limit; none
// for an embedded app, which runs in gantry's own process.
func (h *Handler) LimitKills() map[string]uint64 {
	if h.py != nil {
		return nil
	}
	return h.pool.LimitKills()
}

// FastPath marks the handler as one the server's HTTP/1.1 fast path may run: it
// never hijacks the connection or upgrades the protocol.
func (h *Handler) FastPath() {}
