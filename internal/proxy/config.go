package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"gantry/internal/config"
)

// Kind is the proxy route: proxy = "URL" passes requests to an HTTP upstream.
var Kind = config.Kind{
	Name:    "proxy",
	Options: func() config.Options { return new(Options) },
	New:     fromConfig,
}

var _ config.Options = (*Options)(nil)

// defaults fills in what both a config file and code may leave out.
func (o *Options) defaults() {
	if o.Timeout == 0 {
		o.Timeout = config.Duration(defaultTimeout)
	}
}

// Provision implements config.Options.
func (o *Options) Provision(*config.Scope) { o.defaults() }

// Validate implements config.Options.
func (o *Options) Validate(*config.Scope) []config.Problem {
	var probs []config.Problem
	if err := checkUpstream(o.Upstream); err != nil {
		probs = append(probs, config.Problemf("proxy", "proxy %q: %v", o.Upstream, err))
	}
	if _, err := parseTrusted(o.TrustedProxies); err != nil {
		probs = append(probs, config.Problemf("trusted_proxies", "%s", strings.TrimPrefix(err.Error(), "proxy: ")))
	}
	return probs
}

func checkUpstream(s string) error {
	if p, ok := strings.CutPrefix(s, "unix:"); ok {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("a unix socket path must be absolute")
		}
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want \"http://host:port\", \"https://host\" or \"unix:/path.sock\"")
	}
	return nil
}

// Target implements config.Options.
func (o *Options) Target() string { return o.Upstream }

// Equal implements config.Options.
func (o *Options) Equal(other config.Options) bool {
	p, ok := other.(*Options)
	return ok && o.Upstream == p.Upstream && o.Timeout == p.Timeout && slices.Equal(o.TrustedProxies, p.TrustedProxies)
}

func fromConfig(c config.Options, env config.Env) (http.Handler, error) {
	opts := *c.(*Options)
	opts.Route = env.Route.Path
	h, err := New(opts, env.Log)
	if err != nil {
		return nil, err
	}
	return h, nil
}
