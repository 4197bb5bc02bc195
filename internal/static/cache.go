package static

import (
	"os"
	"sync"
	"sync/atomic"
)

// entry is a cached file: every representation (identity and any precompressed
// siblings) in memory, with the signatures of the files it was read from so a
// revalidation can tell whether anything changed.
type entry struct {
	name    string
	checked atomic.Int64 // UnixNano of the last revalidation; also the recency used by eviction
	sigs    [numEncodings]fileSig
	avail   uint8 // bitmask of 1<<enc for the reps present
	reps    [numEncodings]*rep
	cost    int64
}

func (e *entry) add(p *rep, fi os.FileInfo) {
	e.reps[p.enc] = p
	e.sigs[p.enc] = sigOf(fi)
	e.avail |= 1 << p.enc
	e.cost += entryOverhead + int64(len(p.body))
}

// retire releases the descriptors of an entry no longer in the cache.
func (e *entry) retire() {
	for _, p := range e.reps {
		if p != nil && p.pool != nil {
			p.pool.retire()
		}
	}
}

// entryOverhead approximates the memory an entry costs beyond its bodies (structs,
// header strings, map slot), so that many tiny files are bounded too.
const entryOverhead = 512

// cache maps a request path (after the route prefix) to its entry. Reads are
// lock-free (sync.Map suits a read-mostly set of keys); inserts and evictions take
// mu to keep the byte budget exact.
type cache struct {
	m    sync.Map // string -> *entry
	mu   sync.Mutex
	used int64
	max  int64 // <0: caching disabled
}

func newCache(max int64) *cache { return &cache{max: max} }

func (c *cache) enabled() bool { return c.max > 0 }

func (c *cache) get(key string) *entry {
	if c.max <= 0 {
		return nil
	}
	v, ok := c.m.Load(key)
	if !ok {
		return nil
	}
	return v.(*entry)
}

// evictSample is how many entries are looked at to choose a victim: sampled
// least-recently-checked (as Redis does) is close to LRU without a shared list
// that every hit would have to update.
const evictSample = 8

// put stores e under key, evicting entries until it fits. An entry larger than
// the whole budget is not stored.
func (c *cache) put(key string, e *entry) {
	if c.max <= 0 || e.cost > c.max {
		e.retire()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, loaded := c.m.Swap(key, e); loaded {
		c.used -= old.(*entry).cost
		old.(*entry).retire()
	}
	c.used += e.cost
	for c.used > c.max {
		var victimKey any
		var victim *entry
		n := 0
		c.m.Range(func(k, v any) bool {
			ve := v.(*entry)
			if ve != e && (victim == nil || ve.checked.Load() < victim.checked.Load()) {
				victimKey, victim = k, ve
			}
			n++
			return n < evictSample
		})
		if victim == nil {
			break
		}
		c.m.Delete(victimKey)
		c.used -= victim.cost
		victim.retire()
	}
}

// retireAll releases the descriptors of every entry, for a cache being dropped.
func (c *cache) retireAll() {
	c.m.Range(func(_, v any) bool {
		v.(*entry).retire()
		return true
	})
}

// remove drops key if it still maps to e (a concurrent put may have replaced it).
func (c *cache) remove(key string, e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m.CompareAndDelete(key, e) {
		c.used -= e.cost
		e.retire()
	}
}
