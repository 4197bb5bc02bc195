package fastcgi

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"

	"gantry/internal/config"
	"gantry/internal/fsroot"
)

// Kind is the fastcgi route: fastcgi = "ADDRESS" talks to a running FastCGI server
// (php-fpm); fastcgi_command = [...] spawns and supervises one.
var Kind = config.Kind{
	Name:    "fastcgi",
	Also:    []string{"fastcgi_command"},
	Options: func() config.Options { return new(Options) },
	New:     fromConfig,
}

var _ config.Options = (*Options)(nil)

const defaultProcesses = 2

// commandKeys apply only when fastcgi_command spawns the processes.
var commandKeys = []string{"processes", "max_requests", "env", "user", "group", "max_memory", "max_cpu"}

// defaults fills in what both a config file and code may leave out.
func (o *Options) defaults() {
	if len(o.Index) == 0 {
		o.Index = []string{"index.php"}
	}
	if len(o.Split) == 0 {
		o.Split = []string{".php"}
	}
	if o.Timeout <= 0 {
		o.Timeout = config.Duration(config.DefaultTimeout)
	}
	if len(o.Command) > 0 && o.Processes == 0 {
		o.Processes = defaultProcesses
	}
}

// Provision implements config.Options.
func (o *Options) Provision(s *config.Scope) {
	o.Root = s.Abs(o.Root)
	o.Sendfile.Provision(s)
	o.defaults()
}

// Validate implements config.Options.
func (o *Options) Validate(s *config.Scope) []config.Problem {
	var probs []config.Problem
	add := func(key, format string, args ...any) { probs = append(probs, config.Problemf(key, format, args...)) }
	if o.Address != "" {
		if err := checkAddress(o.Address); err != nil {
			add("fastcgi", "fastcgi %q: %v", o.Address, err)
		}
		if len(o.Command) > 0 {
			add("fastcgi_command", "route %q sets both fastcgi and fastcgi_command: connect to a running server or spawn one, not both", s.Route.Path)
		}
		for _, key := range commandKeys {
			if s.Has(key) {
				add(key, "key %q applies only with fastcgi_command, where gantry spawns the FastCGI processes; a server at an address runs its own", key)
			}
		}
	}
	if len(o.Command) > 0 && o.Command[0] == "" {
		add("fastcgi_command", "fastcgi_command: the program name is empty")
	}
	switch {
	case o.Root != "":
		probs = append(probs, config.CheckDir("root", "root", o.Root)...)
	case s.Site.Root == "":
		add("fastcgi", "route %q: a fastcgi route needs a document root: set root on the route or the site", s.Route.Path)
	}
	for _, x := range o.Split {
		if !strings.HasPrefix(x, ".") {
			add("split", "split %q: want an extension like \".php\"", x)
		}
	}
	if o.MaxRequests < 0 || o.Processes < 0 {
		add("path", "route %q: counts must not be negative", s.Route.Path)
	}
	probs = append(probs, o.Sendfile.Validate()...)
	probs = append(probs, config.CheckGroup("group", o.Group)...)
	probs = append(probs, config.CheckLimits(int64(o.MaxMemory), o.MaxCPU.D())...)
	return append(probs, config.CheckUser("user", o.User)...)
}

func checkAddress(a string) error {
	if p, ok := strings.CutPrefix(a, "unix:"); ok {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("a unix socket path must be absolute, like \"unix:/run/php/php8.2-fpm.sock\"")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		return fmt.Errorf("want \"unix:/path.sock\" or \"host:port\"")
	}
	return nil
}

// Target implements config.Options.
func (o *Options) Target() string {
	if o.Address != "" {
		return o.Address
	}
	return strings.Join(o.Command, " ")
}

// Equal implements config.Options.
func (o *Options) Equal(other config.Options) bool {
	p, ok := other.(*Options)
	return ok && o.Address == p.Address && slices.Equal(o.Command, p.Command) && o.Processes == p.Processes &&
		o.MaxRequests == p.MaxRequests && maps.Equal(o.Env, p.Env) && o.User == p.User && o.Group == p.Group && o.MaxMemory == p.MaxMemory && o.MaxCPU == p.MaxCPU && o.Root == p.Root &&
		slices.Equal(o.Index, p.Index) && slices.Equal(o.Split, p.Split) && o.Timeout == p.Timeout &&
		o.MaxConns == p.MaxConns
}

// RunsScripts implements config.ScriptRunner: the files a fastcgi route matches
// are scripts for its server to run.
func (o *Options) RunsScripts() bool { return true }

func fromConfig(c config.Options, env config.Env) (http.Handler, error) {
	opts := *c.(*Options)
	mode, err := fsroot.ParseMode(env.Site.Symlinks)
	if err != nil {
		return nil, err
	}
	if opts.Root == "" {
		opts.Root = env.Site.Root
	}
	opts.Route, opts.Symlinks, opts.ServerSoftware = env.Route.Path, mode, env.Software
	h, err := New(opts, env.Log)
	if err != nil {
		return nil, err
	}
	return h, nil
}
