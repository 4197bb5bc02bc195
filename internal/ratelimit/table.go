package ratelimit

import (
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// table holds a token bucket per client, at most max of them: a flood of
// addresses makes it forget the idlest clients, never grow.
type table struct {
	perSec float64 // tokens added per second
	burst  float64 // bucket size
	max    int

	mu      sync.Mutex
	clients map[netip.Prefix]bucket
	evicted atomic.Uint64 // clients forgotten to make room
}

type bucket struct {
	tokens  float64
	last    time.Time
	refused bool // the last request was refused: the next refusal is not news
}

func newTable(perSec float64, burst, max int) *table {
	return &table{perSec: perSec, burst: float64(burst), max: max, clients: map[netip.Prefix]bucket{}}
}

// take spends a token of key's bucket. When there is none it reports how long
// until there is one, and whether this is the client's first refusal since it
// was last let through.
func (t *table) take(key netip.Prefix, now time.Time) (ok bool, wait time.Duration, first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, found := t.clients[key]
	if found {
		b.tokens = t.refill(b, now)
	} else {
		if len(t.clients) >= t.max {
			t.evict(now)
		}
		b.tokens = t.burst
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		b.refused = false
		t.clients[key] = b
		return true, 0, false
	}
	first = !b.refused
	b.refused = true
	t.clients[key] = b
	return false, time.Duration(math.Ceil((1 - b.tokens) / t.perSec * float64(time.Second))), first
}

// refill is b's tokens at now.
func (t *table) refill(b bucket, now time.Time) float64 {
	elapsed := now.Sub(b.last).Seconds()
	if elapsed < 0 {
		elapsed = 0
	}
	return min(t.burst, b.tokens+elapsed*t.perSec)
}

// evict forgets one client: among the first eight the map yields (a random
// sample, as Go starts each iteration at a random entry), one whose bucket has
// refilled (forgetting it changes nothing), else the least recently seen: an
// approximate LRU at constant cost, which keeps a flood of one-request addresses
// from pushing out the clients that keep coming. t.mu is held.
func (t *table) evict(now time.Time) {
	var victim netip.Prefix
	var oldest time.Time
	n := 0
	for k, b := range t.clients {
		if t.refill(b, now) >= t.burst {
			victim = k
			break
		}
		if n == 0 || b.last.Before(oldest) {
			victim, oldest = k, b.last
		}
		if n++; n == 8 {
			break
		}
	}
	delete(t.clients, victim)
	t.evicted.Add(1)
}

// size is how many clients the table holds.
func (t *table) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.clients)
}
