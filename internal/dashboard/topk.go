package dashboard

import (
	"sort"
	"strings"
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
	topKKeyLen  = 200 // bytes of a key kept; longer ones are cut
)

type sketch struct {
	start   int64 // window number (Unix time / topKSpan)
	index   map[string]int
	entries []topEntry
}

type topEntry struct {
	key   string
	count uint64
	err   uint64 // how much count may overstate: the count of the entry it evicted
}

func newTopK() *topK {
	t := &topK{}
	for i := range t.windows {
		t.windows[i].index = make(map[string]int, topKSlots)
		t.windows[i].start = -1
	}
	return t
}

func (t *topK) add(key string, now time.Time) {
	if len(key) > topKKeyLen {
		key = key[:topKKeyLen]
	}
	w := now.UnixNano() / int64(topKSpan)
	t.mu.Lock()
	s := &t.windows[w%topKWindows]
	if s.start != w {
		clear(s.index)
		s.entries = s.entries[:0]
		s.start = w
	}
	s.add(key)
	t.mu.Unlock()
}

func (s *sketch) add(key string) {
	if i, ok := s.index[key]; ok {
		s.entries[i].count++
		return
	}
	// A new key is copied: the request's string must not be kept alive.
	if len(s.entries) < topKSlots {
		k := strings.Clone(key)
		s.index[k] = len(s.entries)
		s.entries = append(s.entries, topEntry{key: k, count: 1})
		return
	}
	m := 0
	for i := range s.entries {
		if s.entries[i].count < s.entries[m].count {
			m = i
		}
	}
	e := &s.entries[m]
	delete(s.index, e.key)
	k := strings.Clone(key)
	s.index[k] = m
	*e = topEntry{key: k, count: e.count + 1, err: e.count}
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
		if s.start < 0 || cur-s.start >= topKWindows {
			continue
		}
		for _, e := range s.entries {
			te := sum[e.key]
			if te == nil {
				te = &TopEntry{Key: e.key}
				sum[e.key] = te
			}
			te.Count += e.count
			te.Error += e.err
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
