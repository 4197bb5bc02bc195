// Package redirect answers every request of a route with a redirect to another
// URL, as nginx's "return 301 URL" and Caddy's redir do.
package redirect

import (
	"net/http"
	"strings"

	"gantry/internal/config"
)

// Options configures a redirect route.
type Options struct {
	// To is the URL redirected to; "{uri}" in it stands for the request's path and
	// query: redirect = "https://example.com{uri}".
	To string `toml:"redirect"`
	// Status is 301, 302 (the default), 303, 307 or 308.
	Status int `toml:"status"`
}

// Kind is the redirect route.
var Kind = config.Kind{
	Name:    "redirect",
	Options: func() config.Options { return new(Options) },
	New: func(c config.Options, _ config.Env) (http.Handler, error) {
		return New(*c.(*Options)), nil
	},
}

var _ config.Options = (*Options)(nil)

// Provision implements config.Options.
func (o *Options) Provision(*config.Scope) { o.defaults() }

func (o *Options) defaults() {
	if o.Status == 0 {
		o.Status = http.StatusFound
	}
}

// Validate implements config.Options.
func (o *Options) Validate(*config.Scope) []config.Problem {
	switch o.Status {
	case 301, 302, 303, 307, 308:
		return nil
	}
	return []config.Problem{config.Problemf("status", "redirect status %d: want 301, 302, 303, 307 or 308", o.Status)}
}

// Target implements config.Options.
func (o *Options) Target() string { return o.To }

// Equal implements config.Options.
func (o *Options) Equal(other config.Options) bool {
	p, ok := other.(*Options)
	return ok && *o == *p
}

// New returns a handler redirecting every request to opts.To.
func New(opts Options) http.Handler {
	opts.defaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.ReplaceAll(opts.To, "{uri}", r.URL.RequestURI()), opts.Status)
	})
}
