package dashboard

import (
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gantry/internal/accesslog"
)

// Per-route numbers, as Apache's mod_status and uWSGI's stats show them: rate,
// error rate and latency over the last minute, and a sparkline of the rate.
//
// The request path only adds to atomic counters of a route it finds in a map
// that is replaced, never changed (copy on write): no lock and no allocation.
// The sampler moves the counters into per-tick rings once a second.

// maxRoutes caps the routes tracked; site and route names come from the
// configuration, but reloads may rename them without end. Past it, requests
// count under the route "(other)".
const maxRoutes = 256

// sparkLen is the ticks a route's sparkline and its rates cover.
const sparkLen = 60

type routeKey struct{ site, route string }

// routeCounters are one route's counters: the atomics belong to the request
// path, the rest to the sampler (under traffic.mu).
type routeCounters struct {
	key      routeKey
	requests atomic.Uint64
	errors   atomic.Uint64 // 5xx
	nanos    atomic.Uint64 // time spent answering
	lat      [latBuckets]atomic.Uint64

	total uint64                // requests since the start
	reqs  [sparkLen]uint32      // per tick
	errs  [sparkLen]uint32      // per tick
	durs  [sparkLen]float64     // seconds spent per tick
	secs  [sparkLen]float64     // length of each tick
	hist  [6][latBuckets]uint32 // ten ticks each
	pos   int
	ticks int
}

// traffic is the request path's numbers beyond the status classes: in-flight
// requests (from the server), bytes, routes and the top-k sketches.
type traffic struct {
	routes   atomic.Pointer[map[routeKey]*routeCounters]
	addMu    sync.Mutex    // serialises copy-on-write inserts
	bytesIn  atomic.Uint64 // since the start
	bytesOut atomic.Uint64

	lastIn, lastOut uint64 // at the last tick, the sampler's

	mu sync.Mutex // the sampler's fields of every routeCounters

	urls, notFound, clients *topK
}

func newTraffic() *traffic {
	t := &traffic{urls: newTopK(), notFound: newTopK(), clients: newTopK()}
	m := map[routeKey]*routeCounters{}
	t.routes.Store(&m)
	return t
}

var otherRoute = routeKey{"(other)", "(other)"}

func (t *traffic) route(k routeKey) *routeCounters {
	if rc := (*t.routes.Load())[k]; rc != nil {
		return rc
	}
	t.addMu.Lock()
	defer t.addMu.Unlock()
	old := *t.routes.Load()
	if rc := old[k]; rc != nil {
		return rc
	}
	if len(old) >= maxRoutes {
		if rc := old[otherRoute]; rc != nil {
			return rc
		}
		k = otherRoute
	}
	m := make(map[routeKey]*routeCounters, len(old)+1)
	for kk, v := range old {
		m[kk] = v
	}
	rc := &routeCounters{key: k}
	m[k] = rc
	t.routes.Store(&m)
	return rc
}

func (t *traffic) observe(rec *accesslog.Record, now time.Time) {
	site, route := rec.Site, rec.Route
	if site == "" {
		site = "none"
	}
	if route == "" {
		route = "none"
	}
	rc := t.route(routeKey{site, route})
	rc.requests.Add(1)
	if rec.Status >= 500 && rec.Status < 600 {
		rc.errors.Add(1)
	}
	rc.nanos.Add(uint64(max(rec.Duration, 0)))
	rc.lat[latBucket(rec.Duration)].Add(1)
	if rec.Bytes > 0 {
		t.bytesOut.Add(uint64(rec.Bytes))
	}
	if rec.BodyBytes > 0 {
		t.bytesIn.Add(uint64(rec.BodyBytes))
	}
	path := rec.URI
	for i := 0; i < len(path); i++ {
		if path[i] == '?' {
			path = path[:i]
			break
		}
	}
	t.urls.add(path, now)
	if rec.Status == 404 {
		t.notFound.add(path, now)
	}
	t.clients.add(hostOf(rec.RemoteAddr), now)
}

// hostOf is the address of "host:port" or "[v6]:port" without allocating.
func hostOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			h := addr[:i]
			if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
				return h[1 : len(h)-1]
			}
			if strings.IndexByte(h, ':') >= 0 {
				return addr // a bare IPv6 address
			}
			return h
		}
		if addr[i] == ']' {
			break
		}
	}
	return addr
}

// tick moves every route's counters into its rings.
func (t *traffic) tick(secs float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, rc := range *t.routes.Load() {
		n := rc.requests.Swap(0)
		rc.total += n
		rc.reqs[rc.pos] = uint32(min(n, 1<<32-1))
		rc.errs[rc.pos] = uint32(min(rc.errors.Swap(0), 1<<32-1))
		rc.durs[rc.pos] = float64(rc.nanos.Swap(0)) / 1e9
		rc.secs[rc.pos] = secs
		h := &rc.hist[(rc.ticks/10)%len(rc.hist)]
		if rc.ticks%10 == 0 {
			*h = [latBuckets]uint32{}
		}
		for i := range rc.lat {
			if c := rc.lat[i].Swap(0); c > 0 {
				h[i] += uint32(min(c, 1<<32-1))
			}
		}
		rc.pos = (rc.pos + 1) % sparkLen
		rc.ticks++
	}
}

// RouteStats is one row of GET /api/routes.
type RouteStats struct {
	Site  string  `json:"site"`
	Route string  `json:"route"`
	Total uint64  `json:"total"`
	RPS   float64 `json:"rps"`        // over the last minute
	Error float64 `json:"error_rate"` // 5xx share of the last minute's requests, 0..1
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	AvgMS float64 `json:"avg_ms"`
	// Spark is requests/s per second, oldest first.
	Spark []float64 `json:"spark"`
}

func (t *traffic) snapshot() []RouteStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []RouteStats{}
	for _, rc := range *t.routes.Load() {
		s := RouteStats{Site: rc.key.site, Route: rc.key.route, Total: rc.total, Spark: make([]float64, 0, sparkLen)}
		var n, e uint64
		var secs, dur float64
		for i := range sparkLen {
			j := (rc.pos + i) % sparkLen
			if rc.secs[j] == 0 {
				continue
			}
			n += uint64(rc.reqs[j])
			e += uint64(rc.errs[j])
			secs += rc.secs[j]
			dur += rc.durs[j]
			s.Spark = append(s.Spark, round3(float64(rc.reqs[j])/rc.secs[j]))
		}
		if secs > 0 {
			s.RPS = round3(float64(n) / secs)
		}
		if n > 0 {
			s.Error = round3(float64(e) / float64(n))
			s.AvgMS = round3(dur / float64(n) * 1000)
		}
		var counts [latBuckets]uint64
		for _, h := range rc.hist {
			for i, c := range h {
				counts[i] += uint64(c)
			}
		}
		s.P50MS, s.P99MS = round3(quantile(&counts, 0.5)), round3(quantile(&counts, 0.99))
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Site != out[j].Site {
			return out[i].Site < out[j].Site
		}
		return out[i].Route < out[j].Route
	})
	return out
}

// quantile reads the f quantile in milliseconds from latency bucket counts.
func quantile(counts *[latBuckets]uint64, f float64) float64 {
	var m uint64
	for _, c := range counts {
		m += c
	}
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
