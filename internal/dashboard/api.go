package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gantry/internal/adminsock"
	"gantry/internal/telescope"
	"gantry/internal/telescope/darkport"
	"gantry/internal/telescope/export"
	"gantry/internal/telescope/httpsensor"
)

//go:embed assets
var assets embed.FS

func (d *Dashboard) routes() {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", files))
	mux.HandleFunc("GET /{$}", d.page("index.html"))
	mux.HandleFunc("GET /login", d.page("login.html"))
	mux.HandleFunc("POST /login", d.login)
	mux.HandleFunc("POST /logout", d.logout)
	mux.HandleFunc("GET /api/session", d.sessionInfo)
	mux.HandleFunc("GET /api/status", d.status)
	mux.HandleFunc("GET /api/telescope", d.telescope)
	mux.HandleFunc("GET /api/events", d.events)
	mux.HandleFunc("GET /api/history", d.historyAPI)
	mux.HandleFunc("GET /api/routes", d.routesAPI)
	mux.HandleFunc("GET /api/top", d.topAPI)
	mux.HandleFunc("GET /api/alerts", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, d.currentAlerts()) })
	mux.HandleFunc("GET /api/log", d.logAPI)
	mux.HandleFunc("GET /api/config", d.config)
	mux.HandleFunc("POST /api/reload", d.reload)
	mux.HandleFunc("GET /api/bans", d.bansAPI)
	mux.HandleFunc("POST /api/bans", d.banChange)
	mux.Handle("GET /metrics", d.metrics.handler)
	d.mux = mux
}

// ServeHTTP guards every route: Host check, login, CSRF; then the route.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	now := time.Now()
	local := adminsock.Local(r.Context())
	if !local && d.auth.hash == nil && !loopbackHost(r.Host) {
		http.Error(w, "403 forbidden: without [admin] password_hash the dashboard answers only to 127.0.0.1 and localhost (DNS rebinding protection)", http.StatusForbidden)
		return
	}
	public := strings.HasPrefix(r.URL.Path, "/assets/") || r.URL.Path == "/login"
	if !public && !local {
		ok, err := d.authorized(r, now)
		if err != nil {
			d.log.Warn("admin: password check refused: all hash slots busy", "source", remoteIP(r).String(), "path", r.URL.Path)
			h.Set("Retry-After", "1")
			http.Error(w, "503 busy: too many password checks at once; try again in a second", http.StatusServiceUnavailable)
			return
		}
		if !ok {
			d.unauthorized(w, r)
			return
		}
	}
	if !local && r.Method != http.MethodGet && r.Method != http.MethodHead && r.URL.Path != "/login" && !d.csrfOK(r, now) {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": "cross-site request refused (missing or wrong X-CSRF-Token, or foreign Origin)"})
		return
	}
	d.mux.ServeHTTP(w, r)
}

func (d *Dashboard) unauthorized(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/metrics":
		w.Header().Set("WWW-Authenticate", `Basic realm="gantry"`)
		http.Error(w, "401 unauthorized: scrape with basic_auth (any user name, the dashboard password)", http.StatusUnauthorized)
	case r.Method == http.MethodPost && r.URL.Path == "/api/reload":
		// Loopback is no proof of who asks: any local user or process may
		// connect there, so the password applies; the admin socket is what
		// proves gantry's own user.
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "reload needs authentication: run `gantry reload` as the user gantry runs as (or root), which goes through the admin socket " +
			adminsock.Path() + ", or send the dashboard password with HTTP Basic and X-Gantry-CLI: 1"})
	case strings.HasPrefix(r.URL.Path, "/api/") || r.Method != http.MethodGet:
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "log in first", "login": "/login"})
	default:
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	}
}

// authorized: no password, a session, or Basic credentials; passhash.ErrBusy when the
// credentials could not be checked for want of a hash slot.
func (d *Dashboard) authorized(r *http.Request, now time.Time) (bool, error) {
	if d.auth.hash == nil {
		return true, nil
	}
	if d.auth.session(r, now) != nil {
		return true, nil
	}
	ok, err := d.auth.basicOK(r, now)
	if _, _, sent := r.BasicAuth(); sent && !ok && err == nil {
		d.log.Warn("admin: wrong Basic credentials", "source", remoteIP(r).String(), "path", r.URL.Path)
		d.loginFailed(remoteIP(r))
	}
	return ok, err
}

func (d *Dashboard) loginFailed(src netip.Addr) {
	if d.opts.LoginFailed != nil {
		d.opts.LoginFailed(src)
	}
}

// csrfOK accepts a state-changing request only from the dashboard itself: same
// origin (Sec-Fetch-Site, Origin), and the session's token in X-CSRF-Token. The
// session cookie is SameSite=Strict besides. Non-browser clients (gantry reload, a
// script with Basic credentials) send X-Gantry-CLI instead of the token.
func (d *Dashboard) csrfOK(r *http.Request, now time.Time) bool {
	if !sameOrigin(r) {
		return false
	}
	tok := r.Header.Get("X-CSRF-Token")
	if s := d.auth.session(r, now); s != nil {
		return tok != "" && tok == s.csrf
	}
	if d.auth.hash == nil {
		return tok == d.auth.csrf || r.Header.Get("X-Gantry-CLI") == "1"
	}
	// Basic credentials: the browser may replay them, so insist on a custom header
	return r.Header.Get("X-Gantry-CLI") == "1"
}

func (d *Dashboard) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if name == "login.html" && d.auth.hash == nil {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			http.Error(w, "500 dashboard asset missing", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b)
	}
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	if d.auth.hash == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !sameOrigin(r) {
		http.Error(w, "403 forbidden: cross-site login refused", http.StatusForbidden)
		return
	}
	now := time.Now()
	src := remoteIP(r)
	dev, known := d.auth.device(r)
	allow := func() (bool, time.Duration) { return d.auth.allow(src, now) }
	if known {
		allow = func() (bool, time.Duration) { return d.auth.allowDevice(dev, now) }
	}
	if ok, wait := allow(); !ok {
		d.log.Warn("admin login rate-limited", "source", src.String(), "known_browser", known)
		w.Header().Set("Retry-After", retryAfter(wait))
		http.Redirect(w, r, "/login?error=wait&s="+retryAfter(wait), http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	pw := r.PostFormValue("password")
	ok := false
	if pw != "" {
		var err error
		if ok, err = d.auth.check(r.Context(), pw); err != nil {
			d.log.Warn("admin login refused: all hash slots busy", "source", src.String())
			w.Header().Set("Retry-After", "1")
			http.Error(w, "503 busy: too many logins at once; try again in a second", http.StatusServiceUnavailable)
			return
		}
	}
	if !ok {
		d.log.Warn("admin login failed", "source", src.String())
		d.loginFailed(src)
		http.Redirect(w, r, "/login?error=bad", http.StatusSeeOther)
		return
	}
	if !known {
		http.SetCookie(w, &http.Cookie{Name: deviceCookie, Value: d.auth.newDevice(), Path: "/login", HttpOnly: true, Secure: r.TLS != nil,
			SameSite: http.SameSiteStrictMode, MaxAge: int(deviceLifetime.Seconds())})
	}
	id, _ := d.auth.newSession(now)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int(d.auth.lifetime.Seconds())})
	d.log.Info("admin login", "source", src.String())
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	d.auth.endSession(r)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (d *Dashboard) sessionInfo(w http.ResponseWriter, r *http.Request) {
	csrf := d.auth.csrf
	if s := d.auth.session(r, time.Now()); s != nil {
		csrf = s.csrf
	} else if d.auth.hash != nil {
		csrf = "" // Basic credentials: no token, use X-Gantry-CLI
	}
	writeJSON(w, http.StatusOK, map[string]any{"login_required": d.auth.hash != nil, "csrf": csrf})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

func (d *Dashboard) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, d.opts.Server.Status())
}

// TelescopeStatus is the body of GET /api/telescope.
type TelescopeStatus struct {
	HTTP      *httpsensor.Snapshot `json:"http"`
	DarkPorts *darkport.Snapshot   `json:"dark_ports"`
	// Packets is the live capture's report (the shape of `gantry telescope analyze
	// --format json`), null when no interface is captured.
	Packets   *telescope.Report `json:"packets"`
	Interface string            `json:"interface,omitempty"`
	// Export is the ClickHouse export's counters, null when it is off.
	Export *export.Stats `json:"export"`
}

func (d *Dashboard) telescope(w http.ResponseWriter, r *http.Request) {
	top := 50
	if n, err := strconv.Atoi(r.URL.Query().Get("top")); err == nil && n > 0 && n <= 1000 {
		top = n
	}
	var out TelescopeStatus
	if d.opts.Sensor != nil {
		s := d.opts.Sensor.Snapshot(top)
		out.HTTP = &s
	}
	if d.opts.Dark != nil {
		s := d.opts.Dark.Snapshot(top)
		out.DarkPorts = &s
	}
	if d.opts.Packets != nil {
		rep := d.opts.Packets.Snapshot()
		rep.Locate(d.opts.Locate)
		out.Packets = &rep
		out.Interface = d.opts.Interface
	}
	if d.opts.Export != nil {
		s := d.opts.Export.Stats()
		out.Export = &s
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Dashboard) logAPI(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := logLen
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 && n < logLen {
		limit = n
	}
	after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
	writeJSON(w, http.StatusOK, d.accessLog(after, limit))
}

func (d *Dashboard) config(w http.ResponseWriter, r *http.Request) {
	st := d.opts.Server.Status()
	writeJSON(w, http.StatusOK, map[string]any{"file": st.ConfigFile, "text": d.opts.Server.ConfigText(), "last_reload": st.LastReload})
}

func (d *Dashboard) reload(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	err := d.opts.Server.Reload(ctx)
	last := d.opts.Server.Status().LastReload
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, last)
		return
	}
	writeJSON(w, http.StatusOK, last)
}

// events streams one Sample per second as server-sent events until the client goes.
func (d *Dashboard) events(w http.ResponseWriter, r *http.Request) {
	ch, ok := d.hist.subscribe()
	if !ok {
		w.Header().Set("Retry-After", "10")
		http.Error(w, "503 too many event streams open", http.StatusServiceUnavailable)
		return
	}
	defer d.hist.unsubscribe(ch)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("retry: 2000\n\n"))
	if err := rc.Flush(); err != nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-d.stop:
			return
		case s := <-ch:
			b, err := json.Marshal(s)
			if err != nil {
				d.log.Error("events: encode", "err", err)
				return
			}
			rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := w.Write(append(append([]byte("data: "), b...), '\n', '\n')); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}
