package cgi

import (
	"maps"
	"net/http"

	"gantry/internal/config"
)

// Kind is the cgi route: cgi = "DIR or FILE" runs scripts, one process a request.
var Kind = config.Kind{
	Name:    "cgi",
	Options: func() config.Options { return new(Options) },
	New:     fromConfig,
}

var _ config.Options = (*Options)(nil)

// defaults fills in what both a config file and code may leave out.
func (o *Options) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = config.Duration(defaultTimeout)
	}
	if o.MaxProcesses == 0 {
		o.MaxProcesses = defaultMaxProcesses
	}
}

// Provision implements config.Options.
func (o *Options) Provision(s *config.Scope) {
	o.Path = s.Abs(o.Path)
	o.defaults()
}

// Validate implements config.Options.
func (o *Options) Validate(*config.Scope) []config.Problem {
	probs := config.CheckExists("cgi", "cgi", o.Path)
	if o.MaxProcesses < 0 {
		probs = append(probs, config.Problemf("max_processes", "max_processes must be positive"))
	}
	probs = append(probs, config.CheckGroup("group", o.Group)...)
	probs = append(probs, config.CheckLimits(int64(o.MaxMemory), o.MaxCPU.D())...)
	return append(probs, config.CheckUser("user", o.User)...)
}

// Target implements config.Options.
func (o *Options) Target() string { return o.Path }

// Equal implements config.Options.
func (o *Options) Equal(other config.Options) bool {
	p, ok := other.(*Options)
	return ok && o.Path == p.Path && o.Timeout == p.Timeout && maps.Equal(o.Env, p.Env) &&
		o.PassAuthorization == p.PassAuthorization && o.MaxProcesses == p.MaxProcesses &&
		o.User == p.User && o.Group == p.Group && o.MaxMemory == p.MaxMemory && o.MaxCPU == p.MaxCPU
}

func fromConfig(c config.Options, env config.Env) (http.Handler, error) {
	opts := *c.(*Options)
	opts.Route, opts.DocumentRoot, opts.ServerSoftware, opts.Redirect = env.Route.Path, env.Site.Root, env.Software, env.Redirect
	h, err := New(opts, env.Log)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// PassesAuthorization reports whether the script is to see the client's
// Authorization header: then a route's basic auth leaves it on the request.
func (o *Options) PassesAuthorization() bool { return o.PassAuthorization }
