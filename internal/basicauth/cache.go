package basicauth

import (
	"sync"
	"time"
)

// cache remembers the outcome of recent password checks, keyed by an HMAC of the
// user name and password. It is bounded: when full, an expired entry, else a
// failed check, else a random entry makes room.
type cache struct {
	mu      sync.Mutex
	entries map[[32]byte]cached
	max     int
	ttl     time.Duration
}

type cached struct {
	good    bool
	expires time.Time
}

func newCache(max int, ttl time.Duration) *cache {
	return &cache{entries: map[[32]byte]cached{}, max: max, ttl: ttl}
}

func (c *cache) get(k [32]byte, now time.Time) (good, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || now.After(e.expires) {
		return false, false
	}
	return e.good, true
}

func (c *cache) put(k [32]byte, good bool, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[k] = cached{good: good, expires: now.Add(c.ttl)}
}

// evict drops an expired entry among the first few the map yields, else a
// failure among them, else the first of them: a flood of wrong guesses then
// replaces its own entries, not the logins of users who got it right.
// c.mu is held.
func (c *cache) evict(now time.Time) {
	var victim [32]byte
	failure := false
	n := 0
scan:
	for k, e := range c.entries {
		switch {
		case now.After(e.expires):
			victim = k
			break scan
		case !e.good && !failure:
			victim, failure = k, true
		case n == 0:
			victim = k
		}
		if n++; n == 8 {
			break
		}
	}
	delete(c.entries, victim)
}
