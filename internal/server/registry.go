package server

import (
	"context"
	"net/http"

	"gantry/internal/basicauth"
	"gantry/internal/cgi"
	"gantry/internal/compress"
	"gantry/internal/config"
	"gantry/internal/errpage"
	"gantry/internal/fastcgi"
	"gantry/internal/headers"
	"gantry/internal/proxy"
	"gantry/internal/ratelimit"
	"gantry/internal/redirect"
	"gantry/internal/static"
	"gantry/internal/supervise"
	"gantry/internal/wsgi"
)

// kinds are the route handler kinds gantry has. A new kind is a package with its
// Options and Kind, and a line here.
var kinds = []config.Kind{static.Kind, cgi.Kind, fastcgi.Kind, wsgi.Kind, proxy.Kind, redirect.Kind}

// middleware are the options every site and route takes, in the order they wrap a
// route's handler (the first is outermost). Header rules are outermost, so that
// they apply to the 401 and 429 answers too; compression next, so that it sees
// every body; error pages inside it, so that their pages are compressed and can
// replace the 401 and 429 answers too. Rate limiting runs before auth, as nginx's limit_req (preaccess
// phase) runs before auth_basic (access phase): a client's password guesses are
// then limited like any request, and a flood is refused before it costs a
// password hash. A static route keeps the fast path's cache only while every
// middleware around it can answer from it (headers, compress and errpage can;
// auth and limits cannot).
var middleware = []config.Middleware{headers.Middleware, compress.Middleware, errpage.Middleware, ratelimit.Middleware, basicauth.Middleware}

func init() {
	config.Register(kinds...)
	config.RegisterMiddleware(middleware...)
}

// What the server asks of a route's handler beyond http.Handler; a handler
// implements those that apply to it.
type (
	// Reloader is told when a reload keeps it (its options are unchanged), so it
	// can pick up what changed outside the config (a WSGI app's code).
	Reloader interface {
		Reload(ctx context.Context) error
	}
	// Shutdowner stops what the handler runs (processes, connections, goroutines)
	// once its requests in flight have finished or ctx has ended.
	Shutdowner interface {
		Shutdown(ctx context.Context) error
	}
	// PoolReporter lists the handler's worker processes, for the dashboard and
	// /metrics.
	PoolReporter interface {
		Workers() []supervise.WorkerInfo
		Health() supervise.Health
	}
	// LimitReporter counts the processes that the route's max_memory or
	// max_cpu ended, by limit; nil when the route sets no limit.
	LimitReporter interface {
		LimitKills() map[string]uint64
	}
	// FastServer is a handler that the fast path (internal/http1) may run for
	// bodiless GET and HEAD requests: it needs nothing of net/http's
	// ResponseWriter that http1's lacks (no Hijack, no protocol upgrade).
	FastServer interface {
		http.Handler
		FastPath()
	}
	// CachedServer answers a request from memory on the fast path when it can,
	// and otherwise writes nothing and says so.
	CachedServer interface {
		ServeCached(w http.ResponseWriter, r *http.Request) bool
	}
	// Closer ends the long-lived responses of an admin handler (the dashboard's
	// event streams), so that a shutdown can finish.
	Closer interface {
		Close()
	}
)

var (
	_ Shutdowner    = (*static.Handler)(nil)
	_ CachedServer  = (*static.Handler)(nil)
	_ FastServer    = (*static.Handler)(nil)
	_ Shutdowner    = (*cgi.Handler)(nil)
	_ Shutdowner    = (*fastcgi.Handler)(nil)
	_ PoolReporter  = (*fastcgi.Handler)(nil)
	_ FastServer    = (*fastcgi.Handler)(nil)
	_ Shutdowner    = (*wsgi.Handler)(nil)
	_ Reloader      = (*wsgi.Handler)(nil)
	_ PoolReporter  = (*wsgi.Handler)(nil)
	_ LimitReporter = (*wsgi.Handler)(nil)
	_ LimitReporter = (*fastcgi.Handler)(nil)
	_ LimitReporter = (*cgi.Handler)(nil)
	_ FastServer    = (*wsgi.Handler)(nil)
	_ Shutdowner    = (*proxy.Handler)(nil)

	_ basicauth.Passer = (*cgi.Options)(nil)
)

// bodyOptions are a gateway route's options about request bodies (config.Body).
type bodyOptions interface {
	Buffered() bool
}

// unsizedBodyTaker is a gateway whose worker reads a body of unknown length to its
// end, so that with request_buffering = false such a body need not be spooled.
type unsizedBodyTaker interface {
	TakesUnsizedBody() bool
}

// sendfileOptions are the options of a route whose application may answer with a
// file for gantry to send (config.Sendfile).
type sendfileOptions interface {
	SendfileDir() string
}
