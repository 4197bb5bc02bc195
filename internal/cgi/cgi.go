// Package cgi runs CGI scripts (RFC 3875), one process per request.
//
// It is its own host rather than net/http/cgi, which passes Authorization, decodes
// PATH_INFO, leaves PATH_TRANSLATED unset and copies script headers with control bytes
// through. Here the meta-variables come from internal/cgienv; the script's path is
// found through os.Root so nothing outside the script directory can run; the script
// is exec'd directly in its own process group with only stdin, stdout and stderr open
// and an environment of the meta-variables, the route's env and PATH; its response
// header is validated before any of it reaches the client; and a timeout, a client
// that goes away or a shutdown kill the whole group.
package cgi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gantry/internal/cgienv"
	"gantry/internal/config"
	"gantry/internal/spool"
	"gantry/internal/supervise"
)

// Options configures a Handler. Its keys are a cgi route's; the fields without
// one are set by code.
type Options struct {
	// Path is a directory of scripts (the first path segment below Route naming a
	// file in it is the script) or one executable file (every request under Route
	// runs it).
	Path string `toml:"cgi"`
	// Route is the route's path: "/cgi-bin/" (a prefix, stripped to find the script),
	// "/x" (exact) or "*.cgi", "/app/*.cgi" (suffix; the whole URL path maps into
	// Path). Default "/".
	Route string `toml:"-"`
	// DocumentRoot is the site's root, for DOCUMENT_ROOT and PATH_TRANSLATED.
	DocumentRoot string `toml:"-"`
	// Timeout bounds a script's run; past it the client gets 504 and the script's
	// process group is killed. Default 60s.
	Timeout config.Duration `toml:"timeout"`
	// Env holds extra variables; they win over those derived from the request.
	Env config.Strings `toml:"env"`
	// PassAuthorization passes the Authorization header as HTTP_AUTHORIZATION.
	PassAuthorization bool `toml:"pass_authorization"`
	// MaxProcesses caps concurrently running scripts. Default 64.
	MaxProcesses int `toml:"max_processes"`
	// QueueTimeout is how long a request waits for a free process slot before it
	// gets 503. Default 5s.
	QueueTimeout time.Duration `toml:"-"`
	// User runs scripts as this user (its groups, its primary group unless Group
	// names another). gantry must run as root or hold CAP_SETUID and CAP_SETGID.
	User string `toml:"user"`
	// Group runs scripts with this primary group.
	Group string `toml:"group"`
	// MaxMemory caps each script's address space ("512MB"; RLIMIT_AS, so above
	// its VSZ). 0 = no limit.
	MaxMemory config.Size `toml:"max_memory"`
	// MaxCPU caps the CPU time each script may use in its life ("30s"; RLIMIT_CPU):
	// past it the process is stopped (SIGXCPU, then SIGKILL), and the client gets 502 or what it has been sent. 0 = no limit.
	MaxCPU config.Duration `toml:"max_cpu"`

	// ServerSoftware is SERVER_SOFTWARE.
	ServerSoftware string `toml:"-"`
	// Redirect serves a script's local redirect (a "Location: /path" without Status,
	// RFC 3875 §6.2.2) through the server's routes. When nil the redirect is served
	// by this handler.
	Redirect func(w http.ResponseWriter, r *http.Request) `toml:"-"`
	// Body is the request_buffering key.
	config.Body
}

const (
	defaultTimeout      = config.DefaultTimeout
	defaultMaxProcesses = 64
	defaultQueueTimeout = 5 * time.Second
	defaultKillGrace    = 3 * time.Second // SIGTERM to SIGKILL, as Apache's mod_cgi
	defaultPath         = "/usr/local/bin:/usr/bin:/bin"
	maxLocalRedirects   = 10
)

// Handler is an http.Handler that runs CGI scripts.
type Handler struct {
	opts      Options
	log       *slog.Logger
	route     route
	root      *os.Root // directory mode; nil in single-file mode
	dir       string   // the script directory, or the one script, absolute
	nph       bool     // single-file mode: the script's name starts with "nph-"
	cred      *syscall.Credential
	limits    supervise.Limits
	limitMu   sync.Mutex
	limited   map[string]uint64 // scripts stopped by a limit, by limit
	devNull   *os.File
	slots     chan struct{}
	killGrace time.Duration

	mu     sync.Mutex
	procs  map[*proc]struct{}
	closed bool
	wg     sync.WaitGroup // requests in flight and their stderr readers
}

// New checks opts and returns a Handler.
func New(opts Options, logger *slog.Logger) (*Handler, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Path == "" {
		return nil, errors.New("cgi: no script path")
	}
	opts.defaults()
	if opts.MaxProcesses < 0 {
		return nil, errors.New("cgi: max_processes must be positive")
	}
	if opts.QueueTimeout <= 0 {
		opts.QueueTimeout = defaultQueueTimeout
	}
	abs, err := filepath.Abs(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("cgi: %s: %w", opts.Path, err)
	}
	h := &Handler{
		opts:      opts,
		log:       logger,
		route:     parseRoute(opts.Route),
		dir:       abs,
		slots:     make(chan struct{}, opts.MaxProcesses),
		killGrace: defaultKillGrace,
		procs:     map[*proc]struct{}{},
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("cgi: %w", err)
	}
	switch {
	case fi.IsDir():
		if h.root, err = os.OpenRoot(abs); err != nil {
			return nil, fmt.Errorf("cgi: %w", err)
		}
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("cgi: %s is neither a directory nor a regular file", abs)
	case fi.Mode().Perm()&0o111 == 0:
		return nil, fmt.Errorf("cgi: %s is not executable (chmod +x it)", abs)
	default:
		h.nph = strings.HasPrefix(filepath.Base(abs), "nph-")
	}
	h.limits = supervise.Limits{Memory: int64(opts.MaxMemory), CPU: opts.MaxCPU.D()}
	if h.limits.Set() {
		h.limited = map[string]uint64{}
	}
	if h.cred, err = supervise.RunAs(opts.User, opts.Group); err != nil {
		h.Close()
		return nil, fmt.Errorf("cgi: %w", err)
	}
	if err := h.limits.Check(h.cred); err != nil {
		h.Close()
		return nil, fmt.Errorf("cgi: %w", err)
	}
	if h.devNull, err = os.Open(os.DevNull); err != nil {
		h.Close()
		return nil, fmt.Errorf("cgi: %w", err)
	}
	// Scripts must get only stdin, stdout and stderr. Go opens everything
	// close-on-exec, but descriptors gantry inherited from whoever started it do
	// not have the flag; set it so they never reach a script.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		h.log.Warn("cgi: cannot mark inherited descriptors close-on-exec", "err", err)
	}
	return h, nil
}

// Close releases the handler's descriptors. Shutdown calls it.
func (h *Handler) Close() {
	if h.root != nil {
		h.root.Close()
	}
	if h.devNull != nil {
		h.devNull.Close()
	}
}

// Shutdown stops taking requests, lets running scripts finish until ctx ends, then
// terminates the process groups still running (SIGTERM, SIGKILL after a grace
// period) and waits until every script has been reaped.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		h.mu.Lock()
		n := len(h.procs)
		for p := range h.procs {
			p.terminate(killShutdown)
		}
		h.mu.Unlock()
		if n > 0 {
			h.log.Warn("cgi: shutdown: terminating running scripts", "count", n)
		}
		select {
		case <-done:
		case <-time.After(h.killGrace + 5*time.Second):
			err = errors.New("cgi: shutdown: requests still running after their scripts were killed")
		}
	}
	h.Close()
	return err
}

type redirectDepthKey struct{}

// ServeHTTP runs the script the request's path names.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		http.Error(w, "503 service unavailable: shutting down", http.StatusServiceUnavailable)
		return
	}
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()

	t, rerr := h.resolve(r.URL.Path)
	if rerr != nil {
		h.refuse(w, r, rerr)
		return
	}
	h.run(w, r, t)
}

func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, e *resolveError) {
	if e.status == http.StatusMovedPermanently {
		u := (&url.URL{Path: r.URL.Path + "/"}).EscapedPath()
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, u, http.StatusMovedPermanently)
		return
	}
	level := slog.LevelInfo
	if e.status != http.StatusNotFound {
		level = slog.LevelWarn
	}
	h.log.Log(r.Context(), level, "cgi: refused", "path", r.URL.Path, "status", e.status, "reason", e.Error(), "remote", r.RemoteAddr)
	http.Error(w, strconv.Itoa(e.status)+" "+strings.ToLower(http.StatusText(e.status)), e.status)
}

// stdinSource is where a script's stdin comes from.
type stdinSource struct {
	fd     uintptr   // given to the child as stdin
	r      io.Reader // streamed into a pipe while the script runs; nil when fd says all
	length int64     // CONTENT_LENGTH when the request had none
	// streamed: r is the client's connection, which must stay readable (an nph-
	// script's output then cannot take the connection over).
	streamed bool
}

func (h *Handler) run(w http.ResponseWriter, r *http.Request, t target) {
	in, status, err := h.stdin(r)
	if err != nil {
		h.log.Warn("cgi: reading request body", "script", t.scriptName, "err", err)
		http.Error(w, strconv.Itoa(status)+" "+strings.ToLower(http.StatusText(status)), status)
		return
	}
	envReq := r
	if in.length >= 0 {
		rc := *r
		rc.ContentLength = in.length
		envReq = &rc
	}
	env, err := h.environ(envReq, t)
	if err != nil {
		h.log.Warn("cgi: refused", "path", r.URL.Path, "status", 400, "reason", err.Error())
		http.Error(w, "400 bad request", http.StatusBadRequest)
		return
	}

	if !h.acquire(r.Context()) {
		h.log.Warn("cgi: too many scripts running", "script", t.scriptName, "max_processes", h.opts.MaxProcesses)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "503 service unavailable: too many CGI processes", http.StatusServiceUnavailable)
		return
	}
	// A script whose complete response went out is reaped in the background,
	// which then gives back its slot and its tracking.
	background := false
	defer func() {
		if !background {
			<-h.slots
		}
	}()

	var pipeR, pipeW *os.File
	if in.r != nil {
		if pipeR, pipeW, err = os.Pipe(); err != nil {
			h.log.Error("cgi: stdin pipe", "err", err)
			http.Error(w, "500 internal server error", http.StatusInternalServerError)
			return
		}
		in.fd = pipeR.Fd()
	}
	p, err := spawn(t.file, env, in.fd, h.cred, h.limits)
	if pipeR != nil {
		// Only the script reads its stdin: once it is gone, writes fail at once.
		pipeR.Close()
	}
	if err != nil {
		if pipeW != nil {
			pipeW.Close()
		}
		h.log.Error("cgi: cannot run script", "script", t.scriptName, "err", err)
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
		return
	}
	s := &session{h: h, w: w, rc: http.NewResponseController(w), r: r, t: t, p: p, streamed: in.streamed}
	p.grace = h.killGrace
	p.onTerminate = func() {
		if s.wroteHeader.Load() {
			s.rc.SetWriteDeadline(time.Now())
		}
	}
	h.track(p, true)
	defer func() {
		if !background {
			h.track(p, false)
		}
	}()
	p.mu.Lock()
	p.timeout = time.AfterFunc(h.opts.Timeout.D(), func() { p.terminate(killTimeout) })
	p.mu.Unlock()

	h.wg.Add(1)
	go h.logStderr(p.stderr, t.scriptName)

	var bodyDone chan struct{}
	var bodyErr error
	if pipeW != nil {
		// A script may answer before it has read all its input; by default Go's
		// HTTP/1 server would close the request body as the answer starts.
		s.rc.EnableFullDuplex()
		bodyDone = make(chan struct{})
		go func() {
			defer close(bodyDone)
			bodyErr = copyBody(pipeW, in.r)
			pipeW.Close()
			if bodyErr != nil {
				if errors.As(bodyErr, new(*http.MaxBytesError)) {
					p.terminate(killBody)
				} else {
					p.terminate(killClient)
				}
			}
		}()
	}
	stop := context.AfterFunc(r.Context(), func() { p.terminate(killClient) })

	s.serve()
	stop()

	p.stdout.Close()
	if bodyDone == nil && s.complete() {
		// The script closed its output after a good header: the response is
		// whole. Its exit (the kernel tearing down its memory) need not delay
		// the client, as lighttpd and Apache do not make it wait either; it is
		// reaped beside, and counted until then.
		background = true
		// Counted in wg, so that Shutdown waits for it and, past its deadline,
		// terminates the script, which is still tracked until then.
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			ws := p.reap(nil)
			p.stderr.SetReadDeadline(time.Now().Add(time.Second))
			h.track(p, false)
			<-h.slots
			if err := exitError(ws); err != nil {
				h.log.Warn("cgi: script exited with an error after a complete response", "script", t.scriptName, "err", err)
			}
		}()
		return
	}
	ws := p.reap(s.beforeWait)
	// A child the script left behind may still hold stderr; give it a moment to
	// finish its line, then stop listening.
	p.stderr.SetReadDeadline(time.Now().Add(time.Second))
	if bodyDone != nil {
		// A child the script left behind may hold stdin without reading it:
		// closing our end ends the copy. A copy waiting on the client ends with
		// the client's next bytes or the server's read timeout; the body must not
		// be read once we return.
		pipeW.Close()
		<-bodyDone
	}
	s.finish(ws, bodyErr)
}

// LimitKills counts the scripts that max_memory or max_cpu stopped, by limit; nil
// when the route sets neither.
func (h *Handler) LimitKills() map[string]uint64 {
	if h.limited == nil {
		return nil
	}
	h.limitMu.Lock()
	defer h.limitMu.Unlock()
	return maps.Clone(h.limited)
}

// stoppedBy counts and returns the limit that ended a script with status ws
// after using cpu of CPU time, if any.
func (h *Handler) stoppedBy(ws syscall.WaitStatus, cpu time.Duration) string {
	// Only max_cpu shows in a script's status: SIGXCPU, or the hard limit's
	// SIGKILL a second later for a script that ignores it. One that ran out of
	// address space fails in its own way, whatever its exit status means.
	limit := supervise.Limits{CPU: h.limits.CPU}.Reason(ws, cpu)
	if limit != "" {
		h.limitMu.Lock()
		h.limited[limit]++
		h.limitMu.Unlock()
	}
	return limit
}

func (h *Handler) track(p *proc, add bool) {
	h.mu.Lock()
	if add {
		h.procs[p] = struct{}{}
	} else {
		delete(h.procs, p)
	}
	closed := h.closed
	h.mu.Unlock()
	if add && closed {
		// Shutdown's deadline may have passed while this script was starting.
		p.terminate(killShutdown)
	}
}

// acquire takes a process slot, waiting up to QueueTimeout for one.
func (h *Handler) acquire(ctx context.Context) bool {
	select {
	case h.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(h.opts.QueueTimeout)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// stdin decides how the request body reaches the script. A body the server spooled
// (internal/spool) is the script's stdin file, or comes from memory through a pipe.
// Otherwise (request_buffering = false) a body of known length streams through a
// pipe as the client sends it; one of unknown length is refused, since a script
// must get CONTENT_LENGTH (RFC 3875 §4.1.2).
func (h *Handler) stdin(r *http.Request) (stdinSource, int, error) {
	in := stdinSource{fd: h.devNull.Fd(), length: -1}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		if r.ContentLength < 0 {
			in.length = 0
		}
		return in, 0, nil
	}
	if sb, ok := r.Body.(*spool.Body); ok {
		in.length = sb.Len()
		if f := sb.File(); f != nil {
			in.fd = f.Fd()
		} else {
			in.r = bytes.NewReader(sb.Bytes())
		}
		return in, 0, nil
	}
	if r.ContentLength < 0 {
		return in, http.StatusLengthRequired, errors.New("request body of unknown length was not spooled")
	}
	in.r, in.streamed = r.Body, true
	return in, 0, nil
}

// environ renders the script's environment: the meta-variables, the route's env and
// PATH, and nothing of gantry's own environment.
func (h *Handler) environ(r *http.Request, t target) ([]string, error) {
	o := cgienv.Options{
		ScriptName:        t.scriptName,
		PathInfo:          t.pathInfo,
		ScriptFilename:    t.file,
		DocumentRoot:      h.opts.DocumentRoot,
		PassAuthorization: h.opts.PassAuthorization,
		ServerSoftware:    h.opts.ServerSoftware,
		Env:               h.opts.Env,
	}
	vars := cgienv.Append(make([]cgienv.Var, 0, 32), r, &o)
	if _, ok := h.opts.Env["PATH"]; !ok {
		vars = append(vars, cgienv.Var{Name: "PATH", Value: defaultPath})
	}
	for _, v := range vars {
		if strings.IndexByte(v.Value, 0) >= 0 {
			return nil, fmt.Errorf("NUL byte in %s", v.Name)
		}
	}
	return cgienv.Environ(vars), nil
}

// copyBody streams the request body into the script's stdin. A script that exits
// without reading all of it is not an error.
func copyBody(dst *os.File, src io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return nil
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// stderrReaders keeps logStderr's buffers: most scripts write nothing there,
// and a buffer a request is garbage the collector pays for.
var stderrReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// logStderr sends each line the script writes to stderr to the error log.
func (h *Handler) logStderr(f *os.File, script string) {
	defer h.wg.Done()
	defer f.Close()
	br := stderrReaders.Get().(*bufio.Reader)
	br.Reset(f)
	defer func() {
		br.Reset(nil)
		stderrReaders.Put(br)
	}()
	for {
		line, err := br.ReadSlice('\n')
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > 0 {
			h.log.Warn("cgi: script stderr", "script", script, "line", string(line))
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}
