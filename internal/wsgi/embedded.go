//go:build python

package wsgi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"gantry/internal/abort"
	"gantry/internal/supervise"
	"gantry/internal/wsgi/pyembed"
)

func init() { startEmbedded = startPython }

// PythonLinked is the libpython version this gantry runs embedded apps with.
func PythonLinked() string { return pyembed.Linked() }

// pyApp is an application in gantry's process.
type pyApp struct {
	pool    *pyembed.Pool
	timeout time.Duration
}

func startPython(h *Handler) (embedded, error) {
	o := h.opts
	pool, err := pyembed.Start(pyembed.Config{App: o.App, Chdir: o.Chdir, Python: o.Python, Env: o.Env,
		Threads: o.Threads, Main: o.Interpreter == interpMain, Log: h.log})
	if err != nil {
		return nil, fmt.Errorf("wsgi: cannot start %q embedded with %s in %s: %w\nhint: %s", o.App, o.Python, o.Chdir, err, hint(o, err.Error()))
	}
	return &pyApp{pool: pool, timeout: o.Timeout.D()}, nil
}

// errGone tells the app that gantry no longer serves its request.
var errGone = errors.New("request ended")

// pyRequest is one request's side in gantry; a pool thread calls it while the
// handler waits. Once ended (the app returned, the request timed out or the
// client left) nothing the app still does reaches the client.
type pyRequest struct {
	h             *Handler
	t             *pyembed.Slot
	w             http.ResponseWriter
	r             *http.Request
	body          io.Reader // a streamed body; nil when it went inline
	timeout       time.Duration
	timer         *time.Timer
	mu            sync.Mutex
	ended         bool
	sent          bool // the head went to the client
	failed        bool // the app raised
	answered      bool // gantry refused the response and answered for it
	contentLength int64
}

func (p *pyApp) serve(h *Handler, w http.ResponseWriter, r *http.Request) {
	r, body, stream, ok := h.readBody(w, r)
	if !ok {
		return
	}
	rq := h.getRequest()
	frame := h.encode(rq, r, nil, stream)
	env := frame[frameHeaderLen+4:]
	t, err := p.pool.Acquire(r.Context(), p.timeout)
	if err != nil {
		h.putRequest(rq)
		if errors.Is(err, pyembed.ErrAllStuck) {
			h.log.Error("wsgi: every Python thread is still in a request that timed out; answering 503 at once",
				"path", r.URL.Path, "threads", h.opts.Threads)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "503 Service Unavailable", http.StatusServiceUnavailable)
			return
		}
		h.unavailable(w, r, err)
		return
	}
	pr := &pyRequest{h: h, t: t, w: w, r: r, timeout: p.timeout, timer: time.NewTimer(p.timeout), contentLength: -1}
	if stream {
		pr.body = io.MultiReader(bytesReader(body), r.Body)
		body = nil
	}
	done := p.pool.Serve(t, env, body, !stream, pr)
	var end abort.Reason
	select {
	case <-done:
		pr.timer.Stop()
		p.pool.Respond(t, done)
		// The thread is done with the environ: its buffer may serve again. (A
		// request that ends earlier leaves it to the collector.)
		h.putRequest(rq)
	case <-pr.timer.C:
		if !p.pool.Stuck(t, done) {
			// Queued behind other requests all along: the app never saw it.
			pr.mu.Lock()
			pr.ended = true
			pr.mu.Unlock()
			h.unavailable(w, r, pyembed.ErrBusy)
			return
		}
		p.pool.Leave(t, done)
		t.Failed()
		end = abort.Timeout
	case <-r.Context().Done():
		end = abort.Client
		p.pool.Leave(t, done)
		// The app may be blocked where the client's leaving never reaches it: past
		// the timeout its thread counts as stuck, as if the client had waited.
		go func() {
			select {
			case <-done:
				pr.timer.Stop()
			case <-pr.timer.C:
				if !p.pool.Stuck(t, done) {
					return
				}
				t.Failed()
				h.log.Error("wsgi: request timed out; its Python thread stays busy until the app returns",
					"method", r.Method, "path", r.URL.Path, "timeout", p.timeout, "client", "gone")
			}
		}()
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.ended = true
	switch {
	case end == abort.Timeout:
		h.log.Error("wsgi: request timed out; its Python thread stays busy until the app returns",
			"method", r.Method, "path", r.URL.Path, "timeout", p.timeout)
		if !pr.sent && !pr.answered {
			http.Error(w, "504 Gateway Timeout", http.StatusGatewayTimeout)
		} else {
			abort.Response(w, abort.Timeout)
		}
	case end == abort.Client:
		abort.Mark(w, abort.Client)
	case pr.answered:
	case pr.failed && !pr.sent:
		http.Error(w, "500 Internal Server Error", http.StatusInternalServerError)
	case pr.failed:
		abort.Response(w, abort.Backend)
	case !pr.sent:
		// The shim sends the head of every response it completes; none means the
		// app's response was lost on the way (the client left mid-call).
		abort.Mark(w, abort.Client)
	}
}

func bytesReader(b []byte) io.Reader {
	r := new(sliceReader)
	*r = b
	return r
}

type sliceReader []byte

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(*s) == 0 {
		return 0, io.EOF
	}
	n := copy(p, *s)
	*s = (*s)[n:]
	return n, nil
}

// refuse answers 500 for a response gantry will not send; the caller holds mu.
func (pr *pyRequest) refuse(msg string, args ...any) error {
	pr.h.log.Error(msg, append(args, "method", pr.r.Method, "path", pr.r.URL.Path)...)
	pr.answered = true
	pr.t.Failed()
	if !pr.sent {
		hdr := pr.w.Header()
		for k := range hdr {
			delete(hdr, k)
		}
		http.Error(pr.w, "500 Internal Server Error", http.StatusInternalServerError)
	} else {
		abort.Response(pr.w, abort.Backend)
	}
	pr.sent = true
	return errGone
}

func (pr *pyRequest) Head(head, body []byte) error {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.ended || pr.answered {
		return errGone
	}
	if pr.sent {
		return pr.refuse("wsgi: invalid response from the application", "err", "response head sent twice")
	}
	if len(head) > maxControlFrame {
		return pr.refuse("wsgi: invalid response from the application",
			"err", fmt.Sprintf("response head of %d bytes exceeds %d", len(head), maxControlFrame))
	}
	code, err := pr.h.writeHead(pr.w, head, &pr.contentLength)
	if err != nil {
		return pr.refuse("wsgi: invalid response from the application", "err", err)
	}
	pr.w.WriteHeader(code)
	pr.sent = true
	if len(body) > 0 {
		if _, err := pr.w.Write(body); err != nil {
			return pr.writeError(err)
		}
	}
	return nil
}

// writeError ends the request after a failed write; the caller holds mu.
func (pr *pyRequest) writeError(err error) error {
	if errors.Is(err, http.ErrContentLength) {
		return pr.refuse("wsgi: invalid response from the application", "err", "body longer than its Content-Length")
	}
	return pr.gone()
}

// gone ends a request whose client left; the caller holds mu.
func (pr *pyRequest) gone() error {
	pr.ended = true
	abort.Mark(pr.w, abort.Client)
	return errGone
}

func (pr *pyRequest) Write(p []byte) error {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.ended || pr.answered || !pr.sent {
		return errGone
	}
	if _, err := pr.w.Write(p); err != nil {
		return pr.writeError(err)
	}
	if err := http.NewResponseController(pr.w).Flush(); err != nil {
		return pr.gone()
	}
	pr.timer.Reset(pr.timeout)
	return nil
}

func (pr *pyRequest) Read(p []byte) (int, error) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.ended {
		return 0, errGone
	}
	if pr.body == nil {
		return 0, io.EOF
	}
	n, err := pr.body.Read(p)
	if err != nil && err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) && !pr.sent {
			pr.h.log.Warn("wsgi: request body too large", "path", pr.r.URL.Path, "limit", mbe.Limit)
			http.Error(pr.w, "413 Request Entity Too Large", http.StatusRequestEntityTooLarge)
			pr.answered, pr.sent = true, true
			return n, errGone
		}
		pr.h.log.Warn("wsgi: reading request body", "path", pr.r.URL.Path, "err", err)
	}
	return n, err
}

func (pr *pyRequest) SendFile(fd int, offset int64) error {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.ended || pr.answered || !pr.sent {
		return errGone
	}
	// A copy of the app's descriptor, which sendFile closes; the app closes its own.
	dup, err := syscall.Dup(fd)
	if err != nil {
		return pr.refuse("wsgi: wsgi.file_wrapper: bad file descriptor", "err", err)
	}
	syscall.CloseOnExec(dup)
	if err := sendFile(pr.w, dup, offset, pr.contentLength); err != nil {
		pr.h.log.Warn("wsgi: sending file", "path", pr.r.URL.Path, "err", err)
		return pr.gone()
	}
	return nil
}

func (pr *pyRequest) Log(level int, text string) {
	switch level {
	case 0:
		pr.h.log.Info("wsgi: app output", "text", text)
	case 1:
		pr.mu.Lock()
		pr.failed = true
		pr.mu.Unlock()
		pr.h.log.Error("wsgi: application error", "method", pr.r.Method, "path", pr.r.URL.Path, "traceback", text)
	default:
		pr.h.log.Error("wsgi: application error", "method", pr.r.Method, "path", pr.r.URL.Path, "traceback", text)
	}
}

func (p *pyApp) reload(ctx context.Context) error {
	if err := p.pool.Reload(ctx, p.timeout); err != nil {
		return fmt.Errorf("wsgi: reload: %w", err)
	}
	return nil
}

func (p *pyApp) shutdown(ctx context.Context) error {
	if err := p.pool.Shutdown(ctx); err != nil {
		return fmt.Errorf("wsgi: %w", err)
	}
	return nil
}

// workers shows each thread as a worker: its thread id, "busy", "ready" or
// "stuck" (in a request that timed out), its requests and errors; the process's
// RSS is the first thread's.
func (p *pyApp) workers() []supervise.WorkerInfo {
	ts := p.pool.Threads()
	out := make([]supervise.WorkerInfo, len(ts))
	for i, t := range ts {
		out[i] = supervise.WorkerInfo{PID: t.TID, State: t.State, Requests: t.Requests, Errors: t.Errors, Started: t.Started}
	}
	if len(out) > 0 {
		out[0].RSSKB = supervise.RSSKB(os.Getpid())
	}
	return out
}
