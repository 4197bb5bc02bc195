package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"gantry/internal/clientnet"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"gantry/internal/passhash"
)

// HashPassword returns an argon2id hash of pw in the PHC string format, for
// [admin] password_hash.
func HashPassword(pw string) (string, error) { return passhash.New(pw) }

type passwordHash = passhash.Hash

func parseHash(h string) (*passwordHash, error) { return passhash.Parse(h) }

// hashWait is how long a login waits for a hash slot (passhash.Slots) before it
// is told to come back.
const hashWait = 2 * time.Second

// check verifies pw with a hash slot, waiting at most hashWait (or until ctx
// ends) for one.
func (a *auth) check(ctx context.Context, pw string) (bool, error) {
	release, err := passhash.Acquire(ctx, hashWait)
	if err != nil {
		return false, err
	}
	defer release()
	return a.verify(a.hash, pw), nil
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
	// devices are the login buckets of browsers that have logged in before
	// (deviceCookie), apart from their network's: whoever floods the login
	// from the admin's own address cannot lock the admin out.
	devices   map[[deviceIDLen]byte]*bucket
	deviceKey []byte
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

// newAuth: hashText is the configured hash, the secret the device cookies are
// signed with, so that they survive a restart and a new password voids them.
func newAuth(hash *passwordHash, hashText string) *auth {
	key := sha256.Sum256([]byte("gantry device cookie\x00" + hashText))
	return &auth{hash: hash, lifetime: 12 * time.Hour, verify: (*passwordHash).Verify, sessions: map[string]*session{},
		limits: map[netip.Prefix]*bucket{}, devices: map[[deviceIDLen]byte]*bucket{}, deviceKey: key[:],
		basic: map[[32]byte]time.Time{}, csrf: randomToken()}
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

// deviceCookie marks a browser that has logged in: OWASP's "device cookie"
// answer to lockout by flooding (an attacker who shares the admin's address or
// network and spends its login budget). It is a random id and its HMAC.
const (
	deviceCookie   = "gantry_device"
	deviceIDLen    = 16
	deviceLifetime = 365 * 24 * time.Hour
)

// device returns the id of r's device cookie when its signature holds.
func (a *auth) device(r *http.Request) ([deviceIDLen]byte, bool) {
	var id [deviceIDLen]byte
	c, err := r.Cookie(deviceCookie)
	if err != nil {
		return id, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(raw) != deviceIDLen+sha256.Size {
		return id, false
	}
	copy(id[:], raw)
	return id, hmac.Equal(raw[deviceIDLen:], a.signDevice(id))
}

func (a *auth) signDevice(id [deviceIDLen]byte) []byte {
	m := hmac.New(sha256.New, a.deviceKey)
	m.Write(id[:])
	return m.Sum(nil)
}

// newDevice returns a fresh device cookie's value.
func (a *auth) newDevice() string {
	var id [deviceIDLen]byte
	rand.Read(id[:])
	return base64.RawURLEncoding.EncodeToString(append(id[:], a.signDevice(id)...))
}

// allowDevice takes a login attempt from a known device's own bucket.
func (a *auth) allowDevice(id [deviceIDLen]byte, now time.Time) (bool, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := bucketOf(a.devices, id, loginBurst, loginBurst*loginEvery, now)
	b.refill(loginBurst, loginEvery, now)
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) * float64(loginEvery))
	}
	b.tokens--
	return true, 0
}

func (b *bucket) refill(burst float64, every time.Duration, now time.Time) {
	b.tokens = min(burst, b.tokens+now.Sub(b.at).Seconds()/every.Seconds())
	b.at = now
}

// bucket returns key's bucket, making a full one (burst tokens) when there is none.
func (a *auth) bucket(key netip.Prefix, burst float64, now time.Time) *bucket {
	return bucketOf(a.limits, key, burst, netBurst*netEvery, now)
}

// bucketOf returns m's bucket for key, making a full one when there is none.
// At maxLimits it first drops the buckets untouched for refilled (they are full
// again), and if none is, one at random: a flood of sources cannot grow m.
func bucketOf[K comparable](m map[K]*bucket, key K, burst float64, refilled time.Duration, now time.Time) *bucket {
	b := m[key]
	if b == nil {
		if len(m) >= maxLimits {
			for k, v := range m {
				if now.Sub(v.at) > refilled {
					delete(m, k)
				}
			}
			if len(m) >= maxLimits {
				for k := range m {
					delete(m, k)
					break
				}
			}
		}
		b = &bucket{tokens: burst, at: now}
		m[key] = b
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
// passhash.ErrBusy when no hash slot came free.
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
