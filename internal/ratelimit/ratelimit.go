// Package ratelimit limits how often one client may request a site or route, as
// nginx's limit_req does: a token bucket per client (an IPv4 address, an IPv6
// /64), refilled at the rate and holding burst requests; a request that finds it
// empty gets 429 Too Many Requests with Retry-After. The table of clients has a
// fixed size, so a flood of addresses costs a bounded amount of memory.
package ratelimit

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gantry/internal/clientnet"
	"gantry/internal/config"
)

// Options are the rate keys of a site or a route.
type Options struct {
	// Rate limits how often one client (an IPv4 address, an IPv6 /64; the address
	// the connection comes from, as the access log shows it) may request the route:
	// "10r/s" or "30r/m". Past it, 429 Too Many Requests with Retry-After. A site's
	// rate applies to each of its routes, each counting its own requests; "off" on
	// a route exempts it. A reload starts the counts afresh.
	// Example: rate = "10r/s"
	Rate string `toml:"rate"`
	// Burst is how many requests a client may send at once before the rate holds
	// it back (default one second's worth of the rate, at least 1).
	Burst int `toml:"burst"`

	perSec float64 // 0: no limit
	burst  int
}

// Middleware is the rate limiting middleware.
var Middleware = config.Middleware{
	Name:    "rate",
	Options: func() config.Settings { return new(Options) },
	Wrap:    wrap,
}

var _ config.Settings = (*Options)(nil)

// tableSize is how many clients a route's table holds (a few MiB at most).
const tableSize = 16384

// Provision implements config.Settings: a route without rate takes its site's.
func (o *Options) Provision(s *config.Scope) {
	o.perSec, o.burst = 0, o.Burst
	if o.Rate != "" && o.Rate != "off" {
		o.perSec, _ = parseRate(o.Rate)
	}
	if s.Route != nil && o.Rate == "" {
		if site, ok := s.SiteDefault(o).(*Options); ok {
			o.perSec = site.perSec
			if o.Burst == 0 {
				o.burst = site.burst
			}
		}
	}
	if o.perSec > 0 && o.burst <= 0 {
		o.burst = max(1, int(math.Ceil(o.perSec)))
	}
}

// Validate implements config.Settings.
func (o *Options) Validate(s *config.Scope) []config.Problem {
	var probs []config.Problem
	switch {
	case o.Rate == "off" && s.Route == nil:
		probs = append(probs, config.Problemf("rate", `rate = "off" exempts a route from its site's rate; on a site, leave rate out`))
	case o.Rate != "" && o.Rate != "off":
		if _, err := parseRate(o.Rate); err != nil {
			probs = append(probs, config.Problemf("rate", "rate %q: %v", o.Rate, err))
		}
	}
	switch {
	case o.Burst < 0 || o.Burst > maxRate:
		probs = append(probs, config.Problemf("burst", "burst %d: want 1 to %d requests", o.Burst, maxRate))
	case o.Burst != 0 && o.perSec == 0 && o.Rate != "off":
		probs = append(probs, config.Problemf("burst", `burst without rate: set rate = "10r/s" or the like`))
	}
	return probs
}

func wrap(c config.Settings, env config.Env, next http.Handler) (http.Handler, error) {
	o := c.(*Options)
	if o.perSec == 0 {
		return nil, nil
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &handler{next: next, t: newTable(o.perSec, o.burst, tableSize), log: log}, nil
}

type handler struct {
	next http.Handler
	t    *table
	log  *slog.Logger

	mu     sync.Mutex
	warned time.Time     // when a full table was last logged
	logged atomic.Uint64 // evictions as of then
}

// warnEvery spaces out the log lines about a full table.
const warnEvery = time.Minute

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := clientnet.HostOfRemote(r.RemoteAddr)
	if !key.IsValid() {
		// A connection with no IP address (a unix socket) is no client to tell apart.
		h.next.ServeHTTP(w, r)
		return
	}
	now := time.Now()
	ok, wait, first := h.t.take(key, now)
	if n := h.t.evicted.Load(); n != h.logged.Load() {
		h.logEvictions(now, n)
	}
	if ok {
		h.next.ServeHTTP(w, r)
		return
	}
	secs := max(1, int(math.Ceil(wait.Seconds())))
	if first {
		h.log.Info("rate limit: client refused until its rate drops", "client", key.String(), "retry_after", secs, "uri", r.RequestURI)
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	http.Error(w, fmt.Sprintf("429 too many requests: slow down; retry after %d s", secs), http.StatusTooManyRequests)
}

// logEvictions says, at most once a minute, that the table is full and clients
// are being forgotten (a flood of addresses, or a table too small).
func (h *handler) logEvictions(now time.Time, evicted uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.Sub(h.warned) < warnEvery {
		return
	}
	h.log.Warn("rate limit: client table full, forgetting the idlest clients", "clients", h.t.size(), "forgotten", evicted-h.logged.Load())
	h.warned = now
	h.logged.Store(evicted)
}
