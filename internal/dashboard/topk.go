package dashboard

import (
	"hash/maphash"
	"sort"
	"sync"
	"time"
)

// topK finds the most frequent keys of the last hour (URLs, sources) in bounded
// memory, whatever the keys: a space-saving sketch (Metwally et al. 2005) per
// ten minutes, six of them, merged when read. A key an attacker invents for
// every request evicts the rarest entry instead of growing a map; a key that
// holds a share above 1/topKSlots of a window is never lost.
type topK struct {
	mu      sync.Mutex
	windows [topKWindows]sketch
}

const (
	topKSlots   = 128 // entries per ten-minute sketch
	topKWindows = 6
	topKSpan    = 10 * time.Minute
	topKKeyLen  = 255 // bytes of a key kept; longer ones are cut
)

// sketch is one window's space-saving sketch. Entries are found by a keyed
// hash of the key (maphash, its seed unknown to a client, so a collision cannot
// be aimed) and keep their key in a fixed array: a new key allocates nothing.
// The counts sit apart from the keys, so that finding the rarest entry to
// evict reads one kilobyte, not every key.
type sketch struct {
	start  int64 // window number (Unix time / topKSpan)
	index  map[uint64]int
	n      int // entries in use
	counts [topKSlots]uint64
	errs   [topKSlots]uint64 // how much a count may overstate: the count of the entry it evicted
	hashes [topKSlots]uint64
	lens   [topKSlots]uint8
	keys   [topKSlots][topKKeyLen]byte
}

var topKSeed = maphash.MakeSeed()

func newTopK() *topK {
	t := &topK{}
	for i := range t.windows {
		t.windows[i].index = make(map[uint64]int, topKSlots)
		t.windows[i].start = -1
	}
	return t
}

func (t *topK) add(key string, now time.Time) {
	if len(key) > topKKeyLen {
		key = key[:topKKeyLen]
	}
	h := maphash.String(topKSeed, key)
	w := now.UnixNano() / int64(topKSpan)
	t.mu.Lock()
	s := &t.windows[w%topKWindows]
	// now is a request's end, the wall clock's time: a slot holding a window an
	// hour or more ahead of it was filled before the clock was set back, and
	// is started afresh like one gone by.
	if s.start != w {
		clear(s.index)
		s.n = 0
		s.start = w
	}
	s.add(h, key)
	t.mu.Unlock()
}

func (s *sketch) add(h uint64, key string) {
	if i, ok := s.index[h]; ok {
		s.counts[i]++
		return
	}
	m := s.n
	if m < topKSlots {
		s.n++
		s.counts[m], s.errs[m] = 0, 0
	} else {
		m = 0
		for i, c := range s.counts {
			if c < s.counts[m] {
				m = i
			}
		}
		delete(s.index, s.hashes[m])
		s.errs[m] = s.counts[m]
	}
	s.hashes[m], s.lens[m] = h, uint8(copy(s.keys[m][:], key))
	s.counts[m]++
	s.index[h] = m
}

// TopEntry is one row of a top list: Count may overstate by up to Error.
type TopEntry struct {
	Key   string `json:"key"`
	Count uint64 `json:"count"`
	Error uint64 `json:"error,omitempty"`
}

// top returns the n most frequent keys of the last hour, most frequent first.
func (t *topK) top(n int, now time.Time) []TopEntry {
	cur := now.UnixNano() / int64(topKSpan)
	sum := map[string]*TopEntry{}
	t.mu.Lock()
	for i := range t.windows {
		s := &t.windows[i]
		if s.start < 0 || cur-s.start >= topKWindows || s.start > cur {
			continue
		}
		for i := range s.n {
			k := string(s.keys[i][:s.lens[i]])
			te := sum[k]
			if te == nil {
				te = &TopEntry{Key: k}
				sum[k] = te
			}
			te.Count += s.counts[i]
			te.Error += s.errs[i]
		}
	}
	t.mu.Unlock()
	out := make([]TopEntry, 0, len(sum))
	for _, e := range sum {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	return out[:min(n, len(out))]
}
