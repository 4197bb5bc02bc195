package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"gantry/internal/clientnet"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2id parameters of HashPassword: OWASP's recommendation (19 MiB, 2 passes, 1
// lane), cheap enough for a small VPS, costly for a password cracker.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns an argon2id hash of pw in the PHC string format, for
// [admin] password_hash.
func HashPassword(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("empty password")
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// passwordHash is a parsed [admin] password_hash: bcrypt ($2a$, $2b$, $2y$) or
// argon2id in the PHC format.
type passwordHash struct {
	bcrypt     []byte
	salt, key  []byte
	mem, iters uint32
	threads    uint8
}

var errHashFormat = errors.New("not a bcrypt ($2b$...) or argon2id ($argon2id$...) hash; make one with `gantry hash-password`")

func parseHash(h string) (*passwordHash, error) {
	if strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$") {
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			return nil, fmt.Errorf("%w (%v)", errHashFormat, err)
		}
		return &passwordHash{bcrypt: []byte(h)}, nil
	}
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return nil, errHashFormat
	}
	var v int
	var p passwordHash
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return nil, fmt.Errorf("argon2id version %q: want v=%d", parts[2], argon2.Version)
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.mem, &p.iters, &p.threads); err != nil ||
		p.mem < 8 || p.mem > 4<<20 || p.iters < 1 || p.iters > 100 || p.threads < 1 {
		return nil, fmt.Errorf("argon2id parameters %q: %w", parts[3], errHashFormat)
	}
	var err1, err2 error
	p.salt, err1 = base64.RawStdEncoding.DecodeString(parts[4])
	p.key, err2 = base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(p.salt) < 8 || len(p.key) < 16 {
		return nil, errHashFormat
	}
	return &p, nil
}

// hashSlots bounds the password hashes computed at once in the process: each
// argon2id takes its m parameter in memory (19 MiB with HashPassword's), so a
// burst of logins must wait for a slot rather than add up.
var hashSlots = make(chan struct{}, 2)

// hashWait is how long a login waits for a slot before it is told to come back.
const hashWait = 2 * time.Second

// errBusy: every hash slot stayed taken for hashWait.
var errBusy = errors.New("too many password checks at once")

// check verifies pw with a hash slot, waiting at most hashWait (or until ctx
// ends) for one.
func (a *auth) check(ctx context.Context, pw string) (bool, error) {
	t := time.NewTimer(hashWait)
	defer t.Stop()
	select {
	case hashSlots <- struct{}{}:
	case <-t.C:
		return false, errBusy
	case <-ctx.Done():
		return false, errBusy
	}
	defer func() { <-hashSlots }()
	return a.verify(a.hash, pw), nil
}

func (p *passwordHash) verify(pw string) bool {
	if p.bcrypt != nil {
		return bcrypt.CompareHashAndPassword(p.bcrypt, []byte(pw)) == nil
	}
	key := argon2.IDKey([]byte(pw), p.salt, p.iters, p.mem, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1
}

const sessionCookie = "gantry_session"

type session struct {
	csrf    string
	expires time.Time
}

// auth keeps the sessions, the login rate limits and the credentials cache.
type auth struct {
	hash     *passwordHash // nil: no login
	lifetime time.Duration
	// verify is (*passwordHash).verify; tests count its concurrent calls.
	verify func(*passwordHash, string) bool

	mu       sync.Mutex
	sessions map[string]*session
	limits   map[netip.Prefix]*bucket // by clientnet.Of and clientnet.Wide
	// basic remembers recently verified Basic credentials (by SHA-256), so that a
	// Prometheus scrape every 15 s does not cost an argon2 computation each time.
	basic map[[32]byte]time.Time
	// csrf is the token of the no-login mode (loopback without password).
	csrf string
}

// Login attempts: a burst of loginBurst, then one per loginEvery, per source
// network (clientnet.Of); and, so that holding many such networks does not multiply
// the budget, netBurst then one per netEvery per wider network (clientnet.Wide).
const (
	loginBurst  = 5
	loginEvery  = 12 * time.Second
	netBurst    = 8 * loginBurst
	netEvery    = loginEvery / 4
	maxSessions = 1000
	maxLimits   = 10000
)

type bucket struct {
	tokens float64
	at     time.Time
}

func newAuth(hash *passwordHash) *auth {
	return &auth{hash: hash, lifetime: 12 * time.Hour, verify: (*passwordHash).verify, sessions: map[string]*session{},
		limits: map[netip.Prefix]*bucket{}, basic: map[[32]byte]time.Time{}, csrf: randomToken()}
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// allow takes a login attempt from the buckets of src's network and of its
// wider network; it returns how long to wait when either has none left.
func (a *auth) allow(src netip.Addr, now time.Time) (bool, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	narrow := a.bucket(clientnet.Of(src), loginBurst, now)
	wide := a.bucket(clientnet.Wide(src), netBurst, now)
	narrow.refill(loginBurst, loginEvery, now)
	wide.refill(netBurst, netEvery, now)
	if narrow.tokens < 1 || wide.tokens < 1 {
		wait := time.Duration((1 - narrow.tokens) * float64(loginEvery))
		if w := time.Duration((1 - wide.tokens) * float64(netEvery)); w > wait {
			wait = w
		}
		return false, wait
	}
	narrow.tokens--
	wide.tokens--
	return true, 0
}

func (b *bucket) refill(burst float64, every time.Duration, now time.Time) {
	b.tokens = min(burst, b.tokens+now.Sub(b.at).Seconds()/every.Seconds())
	b.at = now
}

// bucket returns key's bucket, making a full one (burst tokens) when there is none.
func (a *auth) bucket(key netip.Prefix, burst float64, now time.Time) *bucket {
	b := a.limits[key]
	if b == nil {
		if len(a.limits) >= maxLimits {
			// drop buckets that have refilled; if none has, the oldest of a sample
			for k, v := range a.limits {
				if now.Sub(v.at) > netBurst*netEvery {
					delete(a.limits, k)
				}
			}
			if len(a.limits) >= maxLimits {
				for k := range a.limits {
					delete(a.limits, k)
					break
				}
			}
		}
		b = &bucket{tokens: burst, at: now}
		a.limits[key] = b
	}
	return b
}

func (a *auth) newSession(now time.Time) (id string, s *session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.sessions) >= maxSessions {
		var oldest string
		var at time.Time
		for k, v := range a.sessions {
			if oldest == "" || v.expires.Before(at) {
				oldest, at = k, v.expires
			}
		}
		delete(a.sessions, oldest)
	}
	id = randomToken()
	s = &session{csrf: randomToken(), expires: now.Add(a.lifetime)}
	a.sessions[id] = s
	return id, s
}

func (a *auth) session(r *http.Request, now time.Time) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[c.Value]
	if s == nil {
		return nil
	}
	if now.After(s.expires) {
		delete(a.sessions, c.Value)
		return nil
	}
	return s
}

func (a *auth) endSession(r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		a.mu.Lock()
		delete(a.sessions, c.Value)
		a.mu.Unlock()
	}
}

// basicOK checks HTTP Basic credentials (any user name) against the password;
// errBusy when no hash slot came free.
func (a *auth) basicOK(r *http.Request, now time.Time) (bool, error) {
	_, pw, ok := r.BasicAuth()
	if !ok || a.hash == nil {
		return false, nil
	}
	sum := sha256.Sum256([]byte(pw))
	a.mu.Lock()
	exp, cached := a.basic[sum]
	a.mu.Unlock()
	if cached && now.Before(exp) {
		return true, nil
	}
	if allowed, _ := a.allow(remoteIP(r), now); !allowed {
		return false, nil
	}
	if ok, err := a.check(r.Context(), pw); !ok {
		return false, err
	}
	a.mu.Lock()
	if len(a.basic) >= 16 {
		clear(a.basic)
	}
	a.basic[sum] = now.Add(10 * time.Minute)
	a.mu.Unlock()
	return true, nil
}

func remoteIP(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// sameOrigin rejects cross-site requests: a browser tells with Sec-Fetch-Site and
// Origin; clients that send neither (curl, gantry reload) are not browsers.
func sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	switch site {
	case "", "same-origin", "none":
	default:
		return false
	}
	// "null" is what a sandboxed frame sends, and a same-origin form under a strict
	// referrer policy: only the latter says so in Sec-Fetch-Site.
	if o := r.Header.Get("Origin"); o == "null" {
		return site == "same-origin"
	} else if o != "" {
		host := strings.TrimPrefix(strings.TrimPrefix(o, "http://"), "https://")
		if host == o || !strings.EqualFold(host, r.Host) {
			return false
		}
	}
	return true
}

// loopbackHost reports whether the Host header names this machine: without a
// password the dashboard answers only to such names, so that a web page cannot
// reach it by pointing its own domain at 127.0.0.1 (DNS rebinding).
func loopbackHost(h string) bool {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") || strings.HasSuffix(strings.ToLower(h), ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

func retryAfter(d time.Duration) string {
	return strconv.Itoa(int(d.Seconds()) + 1)
}
