package wsgi

import (
	"errors"
	"maps"
	"net/http"
	"strings"

	"gantry/internal/config"
)

// Kind is the wsgi route: wsgi = "module:callable" serves a Python WSGI app from a
// pool of worker processes that gantry supervises.
var Kind = config.Kind{
	Name:    "wsgi",
	Options: func() config.Options { return new(Options) },
	New:     fromConfig,
}

var _ config.Options = (*Options)(nil)

// Defaults of the worker pool, uWSGI's and gunicorn's usual small-VPS choice.
const (
	defaultProcesses = 2
	defaultThreads   = 4
	modeDaemon       = "daemon"
	modeEmbedded     = "embedded"
	interpSub        = "sub"
	interpMain       = "main"
)

// errEmbedded refuses mode = "embedded" in a gantry built without Python.
var errEmbedded = errors.New(`wsgi: mode = "embedded" needs a gantry built with -tags python (cgo and libpython); use the default daemon mode`)

// defaults fills in what both a config file and code may leave out.
func (o *Options) defaults() {
	if o.Processes == 0 {
		o.Processes = defaultProcesses
	}
	if o.Threads == 0 {
		o.Threads = defaultThreads
	}
	if o.Timeout <= 0 {
		o.Timeout = config.Duration(config.DefaultTimeout)
	}
	if o.Mode == "" {
		o.Mode = modeDaemon
	}
	if o.Interpreter == "" {
		o.Interpreter = interpSub
	}
}

// Provision implements config.Options.
func (o *Options) Provision(s *config.Scope) {
	o.Chdir = s.Abs(o.Chdir)
	if strings.HasSuffix(o.App, ".py") {
		o.App = s.Abs(o.App)
	}
	if strings.Contains(o.Python, "/") {
		o.Python = s.Abs(o.Python)
	}
	o.Sendfile.Provision(s)
	o.defaults()
}

// Validate implements config.Options.
func (o *Options) Validate(s *config.Scope) []config.Problem {
	var probs []config.Problem
	add := func(key, format string, args ...any) { probs = append(probs, config.Problemf(key, format, args...)) }
	if o.Mode != modeDaemon && o.Mode != modeEmbedded {
		add("mode", "mode %q: want \"daemon\" or \"embedded\"", o.Mode)
	}
	if o.Interpreter != interpSub && o.Interpreter != interpMain {
		add("interpreter", "interpreter %q: want \"sub\" or \"main\"", o.Interpreter)
	} else if o.Interpreter == interpMain && o.Mode != modeEmbedded {
		add("interpreter", "interpreter = \"main\" applies to mode = \"embedded\" only; a daemon-mode worker runs the app in its main interpreter already")
	}
	if o.Reload != "" && o.Reload != "auto" && o.Reload != "off" {
		add("reload", "reload %q: want \"auto\" or \"off\"", o.Reload)
	}
	if o.Mode == modeEmbedded && (o.User != "" || o.Group != "" || o.MaxMemory != 0 || o.MaxCPU != 0) {
		add("user", "user, group, max_memory and max_cpu apply to daemon mode's worker processes; an embedded app runs inside gantry")
	}
	probs = append(probs, config.CheckLimits(int64(o.MaxMemory), o.MaxCPU.D())...)
	if o.Chdir != "" {
		probs = append(probs, config.CheckDir("chdir", "chdir", o.Chdir)...)
	}
	if o.Processes < 1 || o.Threads < 1 {
		add("processes", "processes and threads must be at least 1")
	}
	if o.MaxRequests < 0 || o.Processes < 0 || o.Threads < 0 {
		add("path", "route %q: counts must not be negative", s.Route.Path)
	}
	probs = append(probs, config.CheckUser("user", o.User)...)
	probs = append(probs, config.CheckGroup("group", o.Group)...)
	return append(probs, o.Sendfile.Validate()...)
}

// Target implements config.Options.
func (o *Options) Target() string { return o.App }

// Equal implements config.Options.
func (o *Options) Equal(other config.Options) bool {
	p, ok := other.(*Options)
	return ok && o.App == p.App && o.Python == p.Python && o.Chdir == p.Chdir && o.Processes == p.Processes &&
		o.Threads == p.Threads && o.MaxRequests == p.MaxRequests && o.Timeout == p.Timeout &&
		maps.Equal(o.Env, p.Env) && o.Reload == p.Reload && o.Mode == p.Mode && o.Interpreter == p.Interpreter &&
		o.User == p.User && o.Group == p.Group && o.MaxMemory == p.MaxMemory && o.MaxCPU == p.MaxCPU
}

// TakesUnsizedBody reports that a worker can read a request body of unknown length
// to its end (wsgi.input_terminated), so such a body need not be spooled first.
func (o *Options) TakesUnsizedBody() bool { return true }

func fromConfig(c config.Options, env config.Env) (http.Handler, error) {
	opts := *c.(*Options)
	opts.Route, opts.DocumentRoot, opts.ServerSoftware = env.Route.Path, env.Site.Root, env.Software
	h, err := New(env.Ctx, opts, env.Log)
	if err != nil {
		return nil, err
	}
	return h, nil
}
