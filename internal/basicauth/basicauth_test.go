package basicauth

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gantry/internal/config"
	"gantry/internal/passhash"
)

// build provisions o for a route of site (nil: o is a site's) and wraps a
// handler that reports what it was given.
func build(t *testing.T, o *Options, route *config.Route) http.Handler {
	t.Helper()
	sc := &config.Scope{Site: &config.Site{}, Route: route}
	o.Provision(sc)
	if p := o.Validate(sc); len(p) > 0 {
		t.Fatal(p)
	}
	h, err := wrap(o, config.Env{Route: route}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "authorization=%q", r.Header.Get("Authorization"))
	}))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func do(h http.Handler, user, pw string, ctx context.Context) *httptest.ResponseRecorder {
	r := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
	if user != "" {
		r.SetBasicAuth(user, pw)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandler(t *testing.T) {
	h := build(t, &Options{Auth: "testdata/htpasswd", AuthRealm: "Team ✓"}, &config.Route{Path: "/"})
	tests := []struct {
		name, user, pw string
		status         int
	}{
		{"no credentials", "", "", 401},
		{"bcrypt $2y$", "alice", "alice-secret", 200},
		{"argon2id, a space and UTF-8 in the password", "bob", "bob secret ✓", 200},
		{"bcrypt $2a$, a colon in the password", "carol", "carol:colon", 200},
		{"a wrong password", "alice", "alice-secreT", 401},
		{"an unknown user", "mallory", "alice-secret", 401},
		{"an empty password", "alice", "", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := do(h, tc.user, tc.pw, context.Background())
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if tc.status == 401 {
				if got := w.Header().Get("WWW-Authenticate"); got != `Basic realm="Team ✓", charset="UTF-8"` {
					t.Errorf("WWW-Authenticate %q", got)
				}
				return
			}
			if got := w.Body.String(); got != `authorization=""` {
				t.Errorf("the handler behind saw %s, want no Authorization", got)
			}
		})
	}
	// A scheme other than Basic is no credential.
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer abc")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Errorf("Bearer: status %d, want 401", w.Code)
	}
}

type passing struct{ config.Options }

func (passing) PassesAuthorization() bool { return true }

// A cgi route with pass_authorization keeps the header: the script asked for it.
func TestPassAuthorization(t *testing.T) {
	h := build(t, &Options{Auth: "testdata/htpasswd"}, &config.Route{Path: "/", Handler: passing{}})
	w := do(h, "alice", "alice-secret", context.Background())
	if w.Code != 200 || !strings.HasPrefix(w.Body.String(), `authorization="Basic `) {
		t.Fatalf("status %d, body %s: want the header passed on", w.Code, w.Body)
	}
}

// Credentials checked lately are answered from the cache, without a password
// hash: with every hash slot taken, they still get in, while a new guess is
// turned away (503) instead of queueing for a slot.
func TestCacheSparesHashes(t *testing.T) {
	h := build(t, &Options{Auth: "testdata/htpasswd"}, &config.Route{Path: "/"})
	if w := do(h, "alice", "alice-secret", context.Background()); w.Code != 200 {
		t.Fatalf("first login: %d", w.Code)
	}
	if w := do(h, "alice", "wrong", context.Background()); w.Code != 401 {
		t.Fatalf("wrong password: %d", w.Code)
	}
	for range cap(passhash.Slots) {
		passhash.Slots <- struct{}{}
	}
	t.Cleanup(func() {
		for range cap(passhash.Slots) {
			<-passhash.Slots
		}
	})
	gone, cancel := context.WithCancel(context.Background())
	cancel() // a new guess must not wait: the client is gone
	if w := do(h, "alice", "alice-secret", gone); w.Code != 200 {
		t.Errorf("cached credentials: status %d, want 200 without a hash slot", w.Code)
	}
	if w := do(h, "alice", "wrong", gone); w.Code != 401 {
		t.Errorf("a cached failure: status %d, want 401 without a hash slot", w.Code)
	}
	w := do(h, "alice", "another guess", gone)
	if w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Errorf("a new guess with every slot taken: status %d, Retry-After %q; want 503 with one", w.Code, w.Header().Get("Retry-After"))
	}
}

func TestCacheBounded(t *testing.T) {
	c := newCache(16, time.Minute)
	t0 := time.Unix(1000, 0)
	for i := range 1000 {
		c.put([32]byte{byte(i), byte(i >> 8)}, true, t0)
		if len(c.entries) > 16 {
			t.Fatalf("%d entries after %d puts, more than 16", len(c.entries), i+1)
		}
	}
	k := [32]byte{1, 2, 3}
	c.put(k, true, t0)
	if good, ok := c.get(k, t0.Add(59*time.Second)); !ok || !good {
		t.Error("an entry is gone before its TTL")
	}
	if _, ok := c.get(k, t0.Add(61*time.Second)); ok {
		t.Error("an entry outlived its TTL")
	}
}

func TestOptions(t *testing.T) {
	site := &config.Site{}
	siteOpts := &Options{Auth: "/etc/site-htpasswd", AuthRealm: "Site"}
	siteOpts.Provision(&config.Scope{Site: site})
	site.Middleware = []config.Settings{siteOpts}
	tests := []struct {
		name        string
		o           *Options
		file, realm string
	}{
		{"a route takes its site's", &Options{}, "/etc/site-htpasswd", "Site"},
		{"its own file, the site's realm", &Options{Auth: "/etc/route-htpasswd"}, "/etc/route-htpasswd", "Site"},
		{"its own realm", &Options{AuthRealm: "Route"}, "/etc/site-htpasswd", "Route"},
		{"off exempts it", &Options{Auth: "off"}, "", "Site"},
	}
	for _, tc := range tests {
		tc.o.Provision(&config.Scope{Site: site, Route: &config.Route{Path: "/x/"}})
		if tc.o.file != tc.file || tc.o.realm != tc.realm {
			t.Errorf("%s: file %q realm %q, want %q and %q", tc.name, tc.o.file, tc.o.realm, tc.file, tc.realm)
		}
	}
	none := &Options{}
	none.Provision(&config.Scope{Site: &config.Site{}, Route: &config.Route{}})
	if none.realm != "restricted" || none.file != "" {
		t.Errorf("no auth anywhere: file %q realm %q", none.file, none.realm)
	}

	bad := []struct {
		name string
		o    *Options
		site bool
		key  string
	}{
		{"a quote in the realm", &Options{Auth: "testdata/htpasswd", AuthRealm: `a"b`}, false, "auth_realm"},
		{"a realm without auth", &Options{AuthRealm: "x"}, false, "auth_realm"},
		{"off on a site", &Options{Auth: "off"}, true, "auth"},
		{"a missing file", &Options{Auth: "testdata/nope"}, false, "auth"},
	}
	for _, tc := range bad {
		sc := &config.Scope{Site: &config.Site{}}
		if !tc.site {
			sc.Route = &config.Route{}
		}
		tc.o.Provision(sc)
		p := tc.o.Validate(sc)
		if len(p) != 1 || p[0].Key != tc.key {
			t.Errorf("%s: problems %v, want one about %s", tc.name, p, tc.key)
		}
	}
}

// Wrong guesses do not push a logged-in user's checked credentials out of the
// full cache: otherwise a flood of guesses (each a cache entry) makes every
// user's next request wait for a hash slot the flood holds, and get 503.
func TestCacheKeepsLoginsUnderGuesses(t *testing.T) {
	h := build(t, &Options{Auth: "testdata/htpasswd"}, &config.Route{Path: "/"})
	h.(*handler).cache = newCache(8, cacheTTL)
	if w := do(h, "alice", "alice-secret", context.Background()); w.Code != 200 {
		t.Fatalf("login: %d", w.Code)
	}
	for i := range 60 {
		if w := do(h, "carol", fmt.Sprintf("guess %d", i), context.Background()); w.Code != 401 {
			t.Fatalf("guess %d: %d", i, w.Code)
		}
	}
	for range cap(passhash.Slots) {
		passhash.Slots <- struct{}{}
	}
	t.Cleanup(func() {
		for range cap(passhash.Slots) {
			<-passhash.Slots
		}
	})
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if w := do(h, "alice", "alice-secret", gone); w.Code != 200 {
		t.Errorf("alice after 60 wrong guesses by someone else: status %d, want 200 from the cache", w.Code)
	}
}
