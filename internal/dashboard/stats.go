package dashboard

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Latency buckets: upper bounds growing by 2^(1/4) (19%) from 25µs to about 100 s,
// so a quantile read from them is within 19% of the truth.
const latBuckets = 90

var latBounds = func() [latBuckets]float64 {
	var b [latBuckets]float64
	for i := range b {
		b[i] = 25e-6 * math.Pow(2, float64(i)/4)
	}
	return b
}()

func latBucket(d time.Duration) int {
	s := d.Seconds()
	if s <= latBounds[0] {
		return 0
	}
	i := int(math.Ceil(4 * math.Log2(s/latBounds[0])))
	return min(i, latBuckets-1)
}

// window collects one second of requests with atomic counters: the request path
// takes no lock for it.
type window struct {
	classes [6]atomic.Uint64 // index status/100; 0 for anything outside 1xx..5xx
	lat     [latBuckets]atomic.Uint64
	// aborted counts responses cut short since the start; never reset, as they
	// are rare enough that a rate would mostly read zero.
	aborted atomic.Uint64
}

// Sample is one second of live rates, as /api/events sends it.
type Sample struct {
	Time        int64              `json:"t"` // Unix milliseconds
	RPS         float64            `json:"rps"`
	Requests    map[string]float64 `json:"requests"` // per second by status class: "2xx"...
	P50MS       float64            `json:"p50_ms"`
	P99MS       float64            `json:"p99_ms"`
	Aborted     uint64             `json:"aborted"`     // responses cut short since the start
	Unsolicited float64            `json:"unsolicited"` // per second
	Dark        float64            `json:"dark"`        // dark-port hits per second
	Packets     map[string]float64 `json:"packets"`     // per second by class
	InFlight    float64            `json:"in_flight"`   // requests being answered at the tick
	BytesIn     float64            `json:"bytes_in"`    // request body bytes read per second
	BytesOut    float64            `json:"bytes_out"`   // response bytes per second
	Alerts      []Alert            `json:"alerts"`
}

var classNames = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// take reads and resets the window's counters over an interval of secs seconds.
func (w *window) take(secs float64) (total float64, byClass map[string]float64, class5 uint64, p50, p99 float64) {
	byClass = map[string]float64{}
	var n uint64
	for i := range w.classes {
		c := w.classes[i].Swap(0)
		n += c
		if i == 5 {
			class5 = c
		}
		if i > 0 {
			byClass[classNames[i]] = round3(float64(c) / secs)
		}
	}
	var counts [latBuckets]uint64
	var m uint64
	for i := range w.lat {
		counts[i] = w.lat[i].Swap(0)
		m += counts[i]
	}
	q := func(f float64) float64 {
		if m == 0 {
			return 0
		}
		rank := uint64(math.Ceil(f * float64(m)))
		var seen uint64
		for i, c := range counts {
			seen += c
			if seen >= rank {
				return latBounds[i] * 1000
			}
		}
		return latBounds[latBuckets-1] * 1000
	}
	return round3(float64(n) / secs), byClass, class5, round3(q(0.5)), round3(q(0.99))
}

// round3 keeps three decimals: a rate over a tick of 1.0000001 s is 2, not 1.9999998.
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// history keeps the latest samples and hands each new one to the SSE clients.
type history struct {
	mu      sync.Mutex
	samples []Sample // ring
	next    int
	full    bool
	subs    map[chan Sample]struct{}
}

const historyLen = 600 // ten minutes

func newHistory() *history {
	return &history{samples: make([]Sample, historyLen), subs: map[chan Sample]struct{}{}}
}

func (h *history) add(s Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples[h.next] = s
	h.next = (h.next + 1) % len(h.samples)
	if h.next == 0 {
		h.full = true
	}
	for ch := range h.subs {
		select {
		case ch <- s:
		default: // a client that does not keep up misses samples, it does not block others
		}
	}
}

// list returns the samples, oldest first.
func (h *history) list() []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.full {
		return append([]Sample{}, h.samples[:h.next]...)
	}
	return append(append([]Sample{}, h.samples[h.next:]...), h.samples[:h.next]...)
}

const maxSubscribers = 64

func (h *history) subscribe() (chan Sample, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= maxSubscribers {
		return nil, false
	}
	ch := make(chan Sample, 8)
	h.subs[ch] = struct{}{}
	return ch, true
}

func (h *history) unsubscribe(ch chan Sample) {
	h.mu.Lock()
	delete(h.subs, ch)
	h.mu.Unlock()
}
