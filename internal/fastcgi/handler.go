// Package fastcgi is gantry's FastCGI gateway: an own client (records, name-value
// pairs, a bounded pool of kept-alive connections per backend), PHP-style routing
// (index.php, the split into SCRIPT_NAME and PATH_INFO), and, for fastcgi_command,
// FastCGI processes that gantry spawns and supervises itself, as mod_fcgid does.
package fastcgi

import (
	"context"
	"errors"
	"fmt"
	"gantry/internal/fsroot"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"gantry/internal/abort"
	"gantry/internal/cgienv"
	"gantry/internal/config"
	"gantry/internal/spool"
	"gantry/internal/supervise"
)

// Options configures a FastCGI route. Its keys are a fastcgi route's; the fields
// without one are set by code.
type Options struct {
	// Address is a running FastCGI server: "unix:/path.sock" or "host:port".
	Address string `toml:"fastcgi"`
	// Command, instead of Address, is a FastCGI program that gantry spawns Processes
	// copies of, each given its own listening unix socket as stdin
	// (FCGI_LISTENSOCK_FILENO, as mod_fcgid does; php-cgi serves FastCGI so).
	Command []string `toml:"fastcgi_command"`
	// Processes is how many copies of Command run (default 2).
	Processes int `toml:"processes"`
	// MaxRequests recycles a spawned process after about that many requests (0 = never).
	MaxRequests int `toml:"max_requests"`
	// Env is added to the spawned processes' environment.
	Env config.Strings `toml:"env"`
	// User runs the spawned processes as this user (its groups, its primary group
	// unless Group names another). gantry must run as root or hold CAP_SETUID and
	// CAP_SETGID.
	User string `toml:"user"`
	// Group runs the spawned processes with this primary group.
	Group string `toml:"group"`
	// MaxMemory caps each spawned process's address space ("512MB"; RLIMIT_AS, so above
	// its VSZ). 0 = no limit.
	MaxMemory config.Size `toml:"max_memory"`
	// MaxCPU caps the CPU time each spawned process may use in its life ("30s"; RLIMIT_CPU):
	// past it the process is stopped and replaced. 0 = no limit.
	MaxCPU config.Duration `toml:"max_cpu"`

	// Route is the route's path: "*.php", "/blog/*.php", "/app/" (a prefix, stripped
	// before mapping to Root) or "/".
	Route string `toml:"-"`
	// Root is the document root that scripts are looked up in (SCRIPT_FILENAME).
	Root string `toml:"root"`
	// Index lists the scripts tried for a directory (default ["index.php"]).
	Index []string `toml:"index"`
	// Symlinks is the symbolic link policy for scripts (default fsroot.Inside).
	Symlinks fsroot.Mode `toml:"-"`
	// Split lists the extensions at which a path splits into script and PATH_INFO
	// (default [".php"]).
	Split []string `toml:"split"`

	// Timeout bounds the silence between two reads from (or writes to) the backend
	// (default 60s); past it the client gets 504.
	Timeout config.Duration `toml:"timeout"`
	// DialTimeout bounds connecting to the backend (default 5s).
	DialTimeout time.Duration `toml:"-"`
	// MaxConns bounds the connections to Address (default: the FCGI_MAX_CONNS the
	// server reports, else 2). php-fpm pins a worker to each kept-alive connection and
	// does not report FCGI_MAX_CONNS, so this must not exceed pm.max_children (Debian's
	// pool starts 2): one connection more would wait for a worker that never frees.
	MaxConns int `toml:"max_conns"`
	// IdleTimeout closes connections idle that long, freeing the workers they pin for
	// the php-fpm pool's other clients (default 200ms: under load a connection is
	// never idle that long, and a fresh unix-socket connection costs little).
	IdleTimeout time.Duration `toml:"-"`
	// ServerSoftware is SERVER_SOFTWARE (default "gantry").
	ServerSoftware string `toml:"-"`

	// Body is the request_buffering key; Sendfile the sendfile_root key.
	config.Body
	config.Sendfile
}

// Handler serves a FastCGI route.
type Handler struct {
	opts  Options
	log   *slog.Logger
	rt    router
	src   source
	sup   *supervise.Pool // nil unless Command
	bufs  sync.Pool       // *reqBuf
	close sync.Once
}

// reqBuf holds one request's scratch memory, reused across requests.
type reqBuf struct {
	vars  []cgienv.Var
	pairs []byte
	out   []byte
	// hdr collects the response's headers before they are known to be valid, so a
	// bad block leaves the ResponseWriter's untouched. Cleared, never shared: the
	// value slices go on to the ResponseWriter.
	hdr http.Header
}

// memBodyMax is the largest unspooled request body (request_buffering = false) read
// into memory before the request is sent: such a body goes out in the same write as
// the params and can be replayed on a retry. Larger ones are streamed.
const memBodyMax = spool.DefaultMemory

// New checks opts, opens the document root and connects to (or spawns) the backend.
func New(opts Options, logger *slog.Logger) (*Handler, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if (opts.Address == "") == (len(opts.Command) == 0) {
		return nil, errors.New("fastcgi: set exactly one of an address and a command")
	}
	if opts.Root == "" {
		return nil, errors.New("fastcgi: no document root")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("fastcgi: root %s: %w", opts.Root, err)
	}
	opts.Root = root
	opts.defaults()
	for _, s := range opts.Split {
		if !strings.HasPrefix(s, ".") || len(s) < 2 || strings.ContainsAny(s, "/") || !isASCII(s) {
			return nil, fmt.Errorf("fastcgi: split extension %q: want an ASCII extension like \".php\"", s)
		}
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 200 * time.Millisecond
	}
	r, err := fsroot.Open(root, opts.Symlinks)
	if err != nil {
		return nil, fmt.Errorf("fastcgi: document root: %w", err)
	}
	h := &Handler{opts: opts, log: logger, rt: router{root: r, index: opts.Index, now: time.Now}}
	for _, s := range opts.Split {
		h.rt.split = append(h.rt.split, asciiLower(s))
	}
	if strings.HasSuffix(opts.Route, "/") && !strings.Contains(opts.Route, "*") {
		h.rt.prefix = strings.TrimSuffix(opts.Route, "/")
	}
	h.bufs.New = func() any { return &reqBuf{hdr: http.Header{}} }
	if opts.Address != "" {
		network, addr, err := parseAddress(opts.Address)
		if err != nil {
			r.Close()
			return nil, err
		}
		if h.opts.MaxConns <= 0 {
			h.opts.MaxConns = discoverMaxConns(network, addr, opts.DialTimeout, logger)
		}
		h.src = newAddrPool(network, addr, h.opts.MaxConns, opts.DialTimeout, opts.IdleTimeout)
		return h, nil
	}
	src, sup, err := spawn(&h.opts, logger)
	if err != nil {
		r.Close()
		return nil, err
	}
	h.src, h.sup = src, sup
	return h, nil
}

// defaultMaxConns is used when the server does not say how many connections it
// takes, as php-fpm does not: small enough for the smallest php-fpm pool.
const defaultMaxConns = 2

// discoverMaxConns asks the server for FCGI_MAX_CONNS, which php-fpm answers with
// pm.max_children: the number of connections it can serve at once.
func discoverMaxConns(network, addr string, timeout time.Duration, log *slog.Logger) int {
	nc, err := dial(context.Background(), network, addr, timeout)
	if err != nil {
		log.Warn("fastcgi server not reachable yet; assuming its connection limit",
			"addr", network+":"+addr, "max_conns", defaultMaxConns, "err", err)
		return defaultMaxConns
	}
	defer nc.Close()
	vals, err := getValues(nc, timeout, "FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS")
	if err != nil {
		log.Debug("FCGI_GET_VALUES unanswered", "addr", network+":"+addr, "err", err)
		return defaultMaxConns
	}
	var n int
	if _, err := fmt.Sscan(vals["FCGI_MAX_CONNS"], &n); err != nil || n <= 0 {
		return defaultMaxConns
	}
	return min(n, 1024)
}

// Workers describes the spawned processes for the dashboard; nil when the route talks
// to a server it did not start.
// LimitKills counts the spawned processes that max_memory or max_cpu ended.
func (h *Handler) LimitKills() map[string]uint64 {
	if h.sup == nil {
		return nil
	}
	return h.sup.LimitKills()
}

func (h *Handler) Workers() []supervise.WorkerInfo {
	if h.sup == nil {
		return nil
	}
	return h.sup.Workers()
}

// Health is the spawned pool's crash count and queue; zero without one.
func (h *Handler) Health() supervise.Health {
	if h.sup == nil {
		return supervise.Health{}
	}
	return h.sup.Health()
}

// Shutdown lets requests in flight finish (up to ctx), then closes the connections
// and stops the spawned processes.
func (h *Handler) Shutdown(ctx context.Context) error {
	var err error
	h.close.Do(func() {
		err = h.src.shutdown(ctx)
		h.rt.root.Close()
	})
	return err
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t, st := h.rt.resolve(r.URL.Path)
	switch {
	case st == routeBadPath:
		h.log.Info("bad request path", "path", r.URL.Path)
		http.Error(w, "400 bad request", http.StatusBadRequest)
		return
	case st == routeNotFound:
		http.NotFound(w, r)
		return
	case t.redirect != "":
		u := url.URL{Path: t.redirect, RawQuery: r.URL.RawQuery}
		http.Redirect(w, r, u.String(), http.StatusMovedPermanently)
		return
	}
	var body reqBody
	status, err := body.read(r)
	if err != nil {
		h.log.Info("reading request body", "path", r.URL.Path, "err", err)
		http.Error(w, http.StatusText(status), status)
		return
	}

	buf := h.bufs.Get().(*reqBuf)
	defer h.bufs.Put(buf)
	buf.out = h.encodeRequest(buf, r, t, &body)
	h.roundTrip(w, r, t, buf, &body)
}

// encodeRequest encodes BEGIN_REQUEST, the params and, when the body is in memory,
// STDIN, so that a typical request is one write.
func (h *Handler) encodeRequest(buf *reqBuf, r *http.Request, t target, body *reqBody) []byte {
	o := cgienv.Options{
		ScriptName:     t.scriptName,
		PathInfo:       t.pathInfo,
		ScriptFilename: filepath.Join(h.opts.Root, filepath.FromSlash(t.file)),
		DocumentRoot:   h.opts.Root,
		// PHP applications rely on it (PHP_AUTH_USER, bearer tokens); nginx's and
		// Caddy's FastCGI setups pass it too.
		PassAuthorization: true,
		ServerSoftware:    h.opts.ServerSoftware,
	}
	req := r
	if r.ContentLength != body.length {
		req = new(http.Request)
		*req = *r
		req.ContentLength = body.length
	}
	buf.vars = cgienv.Append(buf.vars[:0], req, &o)
	// What nginx's fastcgi_params add beyond RFC 3875; REDIRECT_STATUS lets php-cgi
	// run with its default cgi.force_redirect.
	buf.vars = append(buf.vars, cgienv.Var{Name: "DOCUMENT_URI", Value: t.docURI},
		cgienv.Var{Name: "REDIRECT_STATUS", Value: "200"})
	// nginx's fastcgi_params always send these two, empty without a body, and
	// PHP applications test them with isset().
	for _, name := range contentVars {
		if !hasVar(buf.vars, name) {
			buf.vars = append(buf.vars, cgienv.Var{Name: name})
		}
	}

	pairs := buf.pairs[:0]
	for _, v := range buf.vars {
		pairs = appendPair(pairs, v.Name, v.Value)
	}
	buf.pairs = pairs
	out := appendBeginRequest(buf.out[:0], requestID, true)
	out = appendStream(out, typeParams, requestID, pairs)
	out = appendRecord(out, typeParams, requestID, nil)
	if body.inline() {
		out = appendStream(out, typeStdin, requestID, body.mem)
		out = appendRecord(out, typeStdin, requestID, nil)
	}
	clear(buf.vars)
	return out
}

var contentVars = [...]string{"CONTENT_TYPE", "CONTENT_LENGTH"}

func hasVar(vars []cgienv.Var, name string) bool {
	for i := range vars {
		if vars[i].Name == name {
			return true
		}
	}
	return false
}

// roundTrip runs the request, retrying once on a fresh connection when the
// connection failed in a way that cannot have run the request twice (see connFailed).
func (h *Handler) roundTrip(w http.ResponseWriter, r *http.Request, t target, buf *reqBuf, body *reqBody) {
	ctx := r.Context()
	idempotent := safeMethod(r.Method) && body.length == 0
	for attempt := 0; ; attempt++ {
		// A request that may not be resent once written checks its kept-alive
		// connection first, so a stale one costs a redial instead of a 502.
		c, err := h.src.get(ctx, attempt > 0, !idempotent || !body.replayable())
		if err != nil && attempt == 0 && ctx.Err() == nil && isDialRefused(err) {
			// A spawned process that died a moment ago, before the pool learnt
			// it: nothing reached it, so another process takes the request.
			h.log.Info("fastcgi process unreachable; trying another", "err", err)
			continue
		}
		if err != nil {
			switch {
			case ctx.Err() != nil:
				h.log.Debug("client went away while waiting for a backend", "path", r.URL.Path)
				abort.Mark(w, abort.Client)
			case isTimeout(err):
				h.fail(w, r, http.StatusGatewayTimeout, err)
			default:
				h.fail(w, r, http.StatusBadGateway, err)
			}
			return
		}
		clear(buf.hdr)
		ex := exchange{h: h, w: w, r: r, c: c, script: t.scriptName, hdr: buf.hdr, idempotent: idempotent}
		res := ex.run(buf.out, body)
		h.src.put(c, res.reusable, res.outcome)
		if res.err == nil {
			return
		}
		if res.retry && attempt == 0 && body.replayable() {
			h.log.Info("fastcgi connection failed before the backend could run the request; retrying on a new one",
				"addr", c.addr, "err", res.err)
			if err := body.rewind(); err == nil {
				continue
			}
		}
		switch {
		case res.clientGone:
			h.log.Info("client went away; request aborted", "path", r.URL.Path, "err", res.err)
			abort.Mark(w, abort.Client)
		case ex.wroteHeader:
			h.log.Error("fastcgi response cut short", "addr", c.addr, "path", r.URL.Path, "err", res.err)
			// The status line is gone: breaking the connection is the only way to
			// tell the client that the body is incomplete.
			why := abort.Backend
			if res.outcome == supervise.Stuck {
				why = abort.Timeout
			}
			abort.Response(w, why)
		default:
			h.fail(w, r, res.status, res.err)
		}
		return
	}
}

// isDialRefused reports a connect that found no listener: the process behind a
// socket is gone, and nothing of the request was sent.
func isDialRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

// safeMethod reports the methods RFC 9110 §9.2.1 calls safe: running one twice
// changes nothing.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	h.log.Error("fastcgi request failed", "status", status, "path", r.URL.Path, "err", err)
	http.Error(w, http.StatusText(status), status)
}

// reqBody is a request body ready to send: in memory, in the file the server spooled
// it to, or streamed from the client (a route with request_buffering = false).
type reqBody struct {
	mem     []byte
	spooled *spool.Body
	stream  io.Reader
	length  int64
}

func (b *reqBody) inline() bool { return b.spooled == nil && b.stream == nil }

// replayable reports whether the body can be sent again on a retry: a spooled one
// can, a streamed one cannot.
func (b *reqBody) replayable() bool { return b.stream == nil }

func (b *reqBody) reader() io.Reader {
	if b.spooled != nil {
		return b.spooled
	}
	return b.stream
}

func (b *reqBody) rewind() error {
	if b.spooled != nil {
		return b.spooled.Rewind()
	}
	return nil
}

// read prepares r's body. The server has usually spooled it (internal/spool); with
// request_buffering = false a body of known length arrives as the client sends it,
// and a small one is read here so it goes out with the params. php-fpm needs
// CONTENT_LENGTH, so a body of unknown length that was not spooled is refused.
// It returns the status to answer with on error.
func (b *reqBody) read(r *http.Request) (int, error) {
	b.length = r.ContentLength
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		b.length = max(b.length, 0)
		return 0, nil
	}
	if sb, ok := r.Body.(*spool.Body); ok {
		b.mem, b.length = sb.Bytes(), sb.Len()
		if b.mem == nil {
			b.spooled = sb
		}
		return 0, nil
	}
	if r.ContentLength < 0 {
		return http.StatusLengthRequired, errors.New("fastcgi: request body of unknown length was not spooled: FastCGI needs CONTENT_LENGTH")
	}
	if r.ContentLength > memBodyMax {
		b.stream = r.Body
		return 0, nil
	}
	b.mem = make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, b.mem); err != nil {
		return bodyStatus(err), fmt.Errorf("fastcgi: request body: %w", err)
	}
	return 0, nil
}

func bodyStatus(err error) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// FastPath marks the handler as one the server's HTTP/1.1 fast path may run: it
// never hijacks the connection or upgrades the protocol.
func (h *Handler) FastPath() {}
