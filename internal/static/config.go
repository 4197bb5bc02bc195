package static

import (
	"net/http"
	"slices"
	"strings"

	"gantry/internal/config"
	"gantry/internal/fsroot"
)

// Kind is the static route: static = "DIR" serves the files under DIR.
var Kind = config.Kind{
	Name:    "static",
	Options: func() config.Options { return new(Options) },
	New:     fromConfig,
}

var _ config.Options = (*Options)(nil)

// defaults fills in what both a config file and code may leave out.
func (o *Options) defaults() {
	if len(o.Index) == 0 {
		o.Index = []string{"index.html"}
	}
}

// Provision implements config.Options.
func (o *Options) Provision(s *config.Scope) {
	o.Root = s.Abs(o.Root)
	for i, dir := range o.Also {
		o.Also[i] = s.Abs(dir)
	}
	o.defaults()
}

// Validate implements config.Options.
func (o *Options) Validate(*config.Scope) []config.Problem {
	probs := config.CheckDir("static", "static", o.Root)
	if bad := badIndex(o.Index); bad != "" {
		probs = append(probs, config.Problemf("index", "index %q: want a plain file name like \"index.html\"", bad))
	}
	for i, e := range o.TryFiles {
		if msg := config.TryFilesProblem(e, i == len(o.TryFiles)-1); msg != "" {
			probs = append(probs, config.Problemf("try_files", "%s", msg))
		}
	}
	for _, dir := range o.Also {
		probs = append(probs, config.CheckDir("static", "static", dir)...)
	}
	return probs
}

// Target implements config.Options.
func (o *Options) Target() string { return o.Root }

// Equal implements config.Options.
func (o *Options) Equal(other config.Options) bool {
	p, ok := other.(*Options)
	return ok && o.Root == p.Root && slices.Equal(o.Index, p.Index) && o.AllowDotfiles == p.AllowDotfiles &&
		o.Browse == p.Browse && slices.Equal(o.TryFiles, p.TryFiles) && slices.Equal(o.Also, p.Also)
}

func fromConfig(c config.Options, env config.Env) (http.Handler, error) {
	opts := *c.(*Options)
	mode, err := fsroot.ParseMode(env.Site.Symlinks)
	if err != nil {
		return nil, err
	}
	opts.Route, opts.Symlinks = env.Route.Path, mode
	h, err := New(opts, env.Log)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// badIndex returns the first name in index that is not a plain file name.
func badIndex(index []string) string {
	for _, idx := range index {
		if idx == "" || strings.ContainsAny(idx, "/\\\x00") || idx == "." || idx == ".." {
			return idx
		}
	}
	return ""
}
