// Package basicauth asks for a user name and password (HTTP basic
// authentication, RFC 7617) on a site or route, checked against an htpasswd file
// of bcrypt or argon2id hashes, as nginx's auth_basic and Caddy's basic_auth do.
// The credentials stop here: the Authorization header is taken off the request
// before a gateway or upstream sees it, which gets the user's name instead
// (REMOTE_USER), and the access log shows who it was.
package basicauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"gantry/internal/accesslog"
	"gantry/internal/cgienv"
	"gantry/internal/config"
	"gantry/internal/passhash"
)

// Options are the auth keys of a site or a route.
type Options struct {
	// Auth asks every request for a user name and password, checked against this
	// htpasswd file ("user:hash" lines; bcrypt "$2y$" as `htpasswd -B` writes, or
	// argon2id as `gantry hash-password --htpasswd USER` does; MD5, SHA-1 and
	// plain-text lines are refused as weak). The file is read at start and on
	// every reload. On a site it applies to all its routes; "off" on a route
	// exempts that route. Gateways and upstreams never see the password: they get
	// REMOTE_USER (and AUTH_TYPE "Basic"), unless a cgi route sets
	// pass_authorization.
	// Example: auth = "/etc/gantry/htpasswd"
	Auth string `toml:"auth"`
	// AuthRealm is the realm the browser's password prompt names (default
	// "restricted"; a route without its own takes its site's).
	AuthRealm string `toml:"auth_realm"`

	file  string // the htpasswd file that applies, "" for none
	realm string
}

// Middleware is the basic auth middleware.
var Middleware = config.Middleware{
	Name:    "auth",
	Options: func() config.Settings { return new(Options) },
	Wrap:    wrap,
}

// Passer is a route handler's options that may ask for the client's
// Authorization header itself (a cgi route's pass_authorization).
type Passer interface {
	PassesAuthorization() bool
}

var _ config.Settings = (*Options)(nil)

const defaultRealm = "restricted"

// Provision implements config.Settings: a route without auth takes its site's.
func (o *Options) Provision(s *config.Scope) {
	o.file, o.realm = "", o.AuthRealm
	if o.Auth != "off" {
		o.file = s.Abs(o.Auth)
	}
	if s.Route != nil {
		if site, ok := s.SiteDefault(o).(*Options); ok {
			if o.Auth == "" {
				o.file = site.file
			}
			if o.realm == "" {
				o.realm = site.AuthRealm
			}
		}
	}
	if o.realm == "" {
		o.realm = defaultRealm
	}
}

// Validate implements config.Settings. A site's file is checked with the site,
// a route's own with the route.
func (o *Options) Validate(s *config.Scope) []config.Problem {
	var probs []config.Problem
	if o.AuthRealm != "" && !validRealm(o.AuthRealm) {
		probs = append(probs, config.Problemf("auth_realm", `auth_realm %q: want printable text without quotes or backslashes, at most 200 bytes`, o.AuthRealm))
	}
	switch {
	case o.Auth == "off" && s.Route == nil:
		probs = append(probs, config.Problemf("auth", `auth = "off" exempts a route from its site's auth; on a site, leave auth out`))
	case o.AuthRealm != "" && o.file == "":
		probs = append(probs, config.Problemf("auth_realm", "auth_realm without auth: set auth = \"/path/to/htpasswd\""))
	case o.Auth != "" && o.Auth != "off":
		_, errs := loadHtpasswd(o.file)
		for _, err := range errs {
			probs = append(probs, config.Problemf("auth", "auth %q: %v", o.file, err))
		}
	}
	return probs
}

func validRealm(r string) bool {
	return len(r) <= 200 && printable(r) && !strings.ContainsAny(r, `"\`)
}

func wrap(c config.Settings, env config.Env, next http.Handler) (http.Handler, error) {
	o := c.(*Options)
	if o.file == "" {
		return nil, nil
	}
	u, errs := loadHtpasswd(o.file)
	if len(errs) > 0 {
		return nil, fmt.Errorf("auth %s: %w", o.file, errors.Join(errs...))
	}
	pass := false
	if env.Route != nil {
		if p, ok := env.Route.Handler.(Passer); ok {
			pass = p.PassesAuthorization()
		}
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{next: next, users: u, pass: pass, log: log,
		challenge: `Basic realm="` + o.realm + `", charset="UTF-8"`, cache: newCache(cacheSize, cacheTTL)}
	for _, hash := range u {
		h.decoy = hash
		break
	}
	if _, err := rand.Read(h.key[:]); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return h, nil
}

// How long a request waits for a password check slot (passhash.Slots) before it
// is told to come back, and how long and how many checked credentials are
// remembered: a browser sends them with every request, and a bcrypt check per
// request would cap a page's assets at a few dozen a second and let anyone with
// a guess burn the CPU.
const (
	slotWait  = 2 * time.Second
	cacheTTL  = 5 * time.Minute
	cacheSize = 1024
)

type handler struct {
	next      http.Handler
	users     users
	decoy     *passhash.Hash // checked for unknown names, so that they take as long
	pass      bool
	challenge string
	log       *slog.Logger
	key       [32]byte // keys the cache's HMACs: no plain hash of a password in memory
	cache     *cache
}

// credsKey keys the Authorization header a handler took off a request, so that
// the request's own local redirects (a CGI Location) are checked with it again.
type credsKey struct{}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pw, ok := r.BasicAuth()
	if _, sent := r.Header["Authorization"]; !sent {
		if taken, _ := r.Context().Value(credsKey{}).(string); taken != "" {
			user, pw, ok = (&http.Request{Header: http.Header{"Authorization": {taken}}}).BasicAuth()
		}
	}
	if !ok {
		h.deny(w)
		return
	}
	good, err := h.check(r.Context(), user, pw)
	switch {
	case err != nil:
		h.log.Warn("basic auth: request refused: too many password checks at once", "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "503 service unavailable: too many logins at once; try again", http.StatusServiceUnavailable)
		return
	case !good:
		h.log.Info("basic auth failed", "user", user, "remote", r.RemoteAddr, "uri", r.RequestURI)
		h.deny(w)
		return
	}
	accesslog.SetUser(w, user)
	ctx := cgienv.WithUser(r.Context(), user)
	if auth := r.Header.Get("Authorization"); auth != "" && !h.pass {
		ctx = context.WithValue(ctx, credsKey{}, auth)
	}
	r2 := r.WithContext(ctx)
	if !h.pass {
		r2.Header = r.Header.Clone()
		delete(r2.Header, "Authorization")
	}
	h.next.ServeHTTP(w, r2)
}

func (h *handler) deny(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", h.challenge)
	http.Error(w, "401 unauthorized: this page needs a user name and password", http.StatusUnauthorized)
}

// check verifies the credentials, from the cache when they were checked lately.
// An unknown user's password is checked against another user's hash, so that
// the time taken does not tell which names exist.
func (h *handler) check(ctx context.Context, user, pw string) (bool, error) {
	mac := hmac.New(sha256.New, h.key[:])
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write([]byte(pw))
	var k [sha256.Size]byte
	mac.Sum(k[:0])
	now := time.Now()
	if good, ok := h.cache.get(k, now); ok {
		return good, nil
	}
	hash, known := h.users[user]
	if !known {
		hash = h.decoy
	}
	release, err := passhash.Acquire(ctx, slotWait)
	if err != nil {
		return false, err
	}
	good := hash.Verify(pw) && known
	release()
	h.cache.put(k, good, now)
	return good, nil
}
