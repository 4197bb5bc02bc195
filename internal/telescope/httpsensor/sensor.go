// Package httpsensor is the telescope's HTTP sensor: it tags every request legit or
// unsolicited (exploit, scanner, probe) by the rules in rules.toml, watches the first
// bytes of every connection for protocols that are not HTTP, and keeps bounded
// per-source tables for the dashboard.
//
// Observe runs on every request, so a legit request costs one pass of a DFA over the
// request target and header values, no lock and no allocation.
package httpsensor

import (
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gantry/internal/telescope"
)

// Options configures a Sensor; zero fields take their defaults.
type Options struct {
	Rules []Rule // default DefaultRules()
	// MaxSources caps the per-source table of unsolicited requests (default 4096);
	// MaxTracked caps the sources whose 404s are being counted (default 16384). Past
	// a cap the least recently seen of a sample is evicted and counted.
	MaxSources int
	MaxTracked int
	// SamplePaths is how many distinct request targets are kept per source (default 5).
	SamplePaths int
	// Recent is the number of latest unsolicited requests kept (default 200).
	Recent int
}

// Verdict says why a request is unsolicited; the zero Verdict means legit.
type Verdict struct {
	Category string
	Rule     string
}

// Field bits of compiled rules.
const (
	fURI uint8 = 1 << iota
	fAny
	fUA
)

// Sensor classifies requests and connections. It is safe for concurrent use.
type Sensor struct {
	rules  []Rule
	counts []atomic.Uint64 // per rule
	total  atomic.Uint64

	m        *matcher
	patRule  []int16 // pattern -> rule index
	patField []uint8
	methods  []int // rules on the method
	hostIP   int   // rule index or -1
	hostUnk  int
	burst    int
	limited  int            // the rate-limited rule, or -1
	conn     map[string]int // check -> rule index
	tls      map[string]int // check -> rule index
	anyFirst int            // first rule that looks at headers (skip them once a better rule hit)
	anyStart []byte         // bytes that can start an "any" pattern; nil: too many to search for

	opts Options

	mu       sync.Mutex
	sources  map[netip.Addr]*source
	tracked  map[netip.Addr]*burstState
	evicted  uint64
	evictedT uint64
	recent   []Event
	recentAt int
}

type source struct {
	requests uint64
	cats     [3]uint64
	rules    map[string]uint64
	first    time.Time
	last     time.Time
	samples  []string
}

type burstState struct {
	start   time.Time
	seen    []uint64 // hashes of distinct 404 paths in this window
	flagged bool
	last    time.Time
}

// Event is one unsolicited request or connection.
type Event struct {
	Time     time.Time `json:"time"`
	Source   string    `json:"source"`
	Category string    `json:"category"`
	Rule     string    `json:"rule"`
	Method   string    `json:"method,omitempty"`
	Target   string    `json:"target"`
	Host     string    `json:"host,omitempty"`
	Status   int       `json:"status,omitempty"`
}

// New compiles the rules.
func New(opts Options) *Sensor {
	if opts.Rules == nil {
		opts.Rules = DefaultRules()
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opts.MaxSources, 4096)
	def(&opts.MaxTracked, 16384)
	def(&opts.SamplePaths, 5)
	def(&opts.Recent, 200)
	s := &Sensor{rules: opts.Rules, counts: make([]atomic.Uint64, len(opts.Rules)), opts: opts,
		hostIP: -1, hostUnk: -1, burst: -1, limited: -1, anyFirst: len(opts.Rules), conn: map[string]int{}, tls: map[string]int{},
		sources: map[netip.Addr]*source{}, tracked: map[netip.Addr]*burstState{}}
	var pats []string
	for i, r := range s.rules {
		var f uint8
		switch r.Field {
		case "uri":
			f = fURI
		case "any":
			f = fAny
			s.anyFirst = min(s.anyFirst, i)
		case "user_agent":
			f = fUA
			s.anyFirst = min(s.anyFirst, i)
		case "method":
			s.methods = append(s.methods, i)
		case "host":
			if r.Check == "ip-literal" {
				s.hostIP = i
			} else {
				s.hostUnk = i
			}
		case "conn":
			s.conn[r.Check] = i
		case "tls":
			s.tls[r.Check] = i
		case "status":
			if r.Check == "rate-limited" {
				s.limited = i
			} else {
				s.burst = i
			}
		}
		for _, p := range r.Contains {
			pats = append(pats, p)
			s.patRule = append(s.patRule, int16(i))
			s.patField = append(s.patField, f)
		}
	}
	s.m = newMatcher(pats)
	seen := map[byte]bool{}
	for i, p := range pats {
		if s.patField[i] == fAny {
			for _, b := range []byte{p[0], lowerASCII(p[0]), upperASCII(p[0])} {
				if !seen[b] {
					seen[b] = true
					s.anyStart = append(s.anyStart, b)
				}
			}
		}
	}
	if len(s.anyStart) > 6 {
		s.anyStart = nil
	}
	return s
}

// Rules returns the compiled rules in order of precedence.
func (s *Sensor) Rules() []Rule { return s.rules }

// scan returns the best (lowest) rule index below best that matches str for a field
// in fields, honouring when_missing.
func (s *Sensor) scan(str string, fields uint8, missing bool, best int) int {
	s.m.run(str, func(out []int16) {
		for _, p := range out {
			ri := int(s.patRule[p])
			if ri < best && s.patField[p]&fields != 0 && (missing || !s.rules[ri].WhenMissing) {
				best = ri
			}
		}
	})
	return best
}

// scanAny is scan for a header, where only "any" patterns apply: it skips to the
// first byte that can start one (a vectorised search), since most headers hold none.
func (s *Sensor) scanAny(str string, missing bool, best int) int {
	if s.anyStart == nil {
		return s.scan(str, fAny, missing, best)
	}
	from := -1
	for _, b := range s.anyStart {
		if i := strings.IndexByte(str, b); i >= 0 && (from < 0 || i < from) {
			from = i
		}
	}
	if from < 0 {
		return best
	}
	return s.scan(str[from:], fAny, missing, best)
}

// Observe classifies one finished request. status is the response status; site is
// the name of the site that answered ("default" for the default site, "" for none);
// named says whether the configuration has sites with host names.
func (s *Sensor) Observe(r *http.Request, status int, site string, named bool, now time.Time) Verdict {
	missing := status >= 400
	best := len(s.rules)
	for _, ri := range s.methods {
		if r.Method == s.rules[ri].Method && (missing || !s.rules[ri].WhenMissing) {
			best = min(best, ri)
		}
	}
	best = s.scan(r.RequestURI, fURI|fAny, missing, best)
	if strings.IndexByte(r.RequestURI, '%') >= 0 {
		// "/%2eenv" is "/.env" to the file system: look at the decoded path too.
		best = s.scan(r.URL.Path, fURI, missing, best)
	}
	if best > s.anyFirst {
		best = s.scanAny(r.Host, missing, best)
		for k, vs := range r.Header {
			best = s.scanAny(k, missing, best)
			for _, v := range vs {
				if k == "User-Agent" {
					best = s.scan(v, fAny|fUA, missing, best)
				} else {
					best = s.scanAny(v, missing, best)
				}
			}
		}
	}
	if named && (s.hostIP >= 0 || s.hostUnk >= 0) {
		if isIPHost(r.Host) {
			if s.hostIP >= 0 {
				best = min(best, s.hostIP)
			}
		} else if (site == "" || site == "default") && s.hostUnk >= 0 {
			best = min(best, s.hostUnk)
		}
	}
	if (status == http.StatusNotFound || status == http.StatusGone) && s.burst >= 0 {
		if s.count404(r, now) {
			best = min(best, s.burst)
		}
	}
	if status == http.StatusTooManyRequests && s.limited >= 0 {
		best = min(best, s.limited)
	}
	if best == len(s.rules) {
		return Verdict{}
	}
	rule := &s.rules[best]
	s.record(best, sourceOf(r.RemoteAddr), now, Event{Time: now, Method: r.Method, Target: r.RequestURI, Host: r.Host, Status: status})
	return Verdict{Category: rule.Category, Rule: rule.Name}
}

// isIPHost reports whether a Host header value is an IP literal, with or without port.
func isIPHost(h string) bool {
	// a name cannot be an address; checking first spares ParseAddr's error allocation
	if h == "" || (h[0] != '[' && (h[0] < '0' || h[0] > '9')) {
		return false
	}
	if h[0] == '[' {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return false
		}
		_, err := netip.ParseAddr(h[1:end])
		return err == nil
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h[:i], ':') < 0 {
		h = h[:i]
	}
	_, err := netip.ParseAddr(h)
	return err == nil
}

func sourceOf(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// count404 counts a 404 from r's source and reports whether the source has now had
// Threshold distinct missing paths within Window.
func (s *Sensor) count404(r *http.Request, now time.Time) bool {
	rule := &s.rules[s.burst]
	src := sourceOf(r.RemoteAddr)
	h := uint64(14695981039346656037)
	for i := 0; i < len(r.URL.Path); i++ {
		h ^= uint64(r.URL.Path[i])
		h *= 1099511628211
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.tracked[src]
	if b == nil {
		if len(s.tracked) >= s.opts.MaxTracked {
			s.evictTracked()
		}
		b = &burstState{start: now, seen: make([]uint64, 0, rule.Threshold)}
		s.tracked[src] = b
	}
	if now.Sub(b.last) > rule.window {
		// idle for a whole window: a new window, and a flagged source is cleared
		b.start, b.seen, b.flagged = now, b.seen[:0], false
	} else if !b.flagged && now.Sub(b.start) > rule.window {
		b.start, b.seen = now, b.seen[:0]
	}
	b.last = now
	if b.flagged {
		return true
	}
	for _, x := range b.seen {
		if x == h {
			return false
		}
	}
	b.seen = append(b.seen, h)
	if len(b.seen) >= rule.Threshold {
		b.flagged = true
	}
	return b.flagged
}

// evictTracked drops the least recently active of a few tracked sources; map
// iteration starts at a random entry, so the sample is random. s.mu is held.
func (s *Sensor) evictTracked() {
	if telescope.EvictSampled(s.tracked, func(b *burstState) time.Time { return b.last }) {
		s.evictedT++
	}
}

func (s *Sensor) record(ri int, src netip.Addr, now time.Time, ev Event) {
	rule := &s.rules[ri]
	s.counts[ri].Add(1)
	s.total.Add(1)
	ev.Category, ev.Rule = rule.Category, rule.Name
	if src.IsValid() {
		ev.Source = src.String()
	}
	if len(ev.Target) > 256 {
		ev.Target = ev.Target[:256]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	so := s.sources[src]
	if so == nil {
		if len(s.sources) >= s.opts.MaxSources {
			s.evictSource()
		}
		so = &source{first: now, rules: map[string]uint64{}}
		s.sources[src] = so
	}
	so.requests++
	so.cats[categoryRank(rule.Category)]++
	so.rules[rule.Name]++
	so.last = now
	if len(so.samples) < s.opts.SamplePaths && !containsString(so.samples, ev.Target) {
		so.samples = append(so.samples, ev.Target)
	}
	if len(s.recent) < s.opts.Recent {
		s.recent = append(s.recent, ev)
	} else {
		s.recent[s.recentAt] = ev
		s.recentAt = (s.recentAt + 1) % len(s.recent)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Sensor) evictSource() {
	if telescope.EvictSampled(s.sources, func(so *source) time.Time { return so.last }) {
		s.evicted++
	}
}

// Source is one row of the per-source table.
type Source struct {
	Source      string            `json:"source"`
	Requests    uint64            `json:"requests"`
	Categories  map[string]uint64 `json:"categories"`
	Rules       map[string]uint64 `json:"rules"`
	First       time.Time         `json:"first"`
	Last        time.Time         `json:"last"`
	SamplePaths []string          `json:"sample_paths"`
}

// RuleCount is how often one rule decided a verdict.
type RuleCount struct {
	Name     string `json:"name"`
	Category string `json:"category"`
	Ref      string `json:"ref"`
	Count    uint64 `json:"count"`
}

// Snapshot is the sensor's state for the admin API.
type Snapshot struct {
	UnsolicitedTotal uint64            `json:"unsolicited_total"`
	Categories       map[string]uint64 `json:"categories"`
	Rules            []RuleCount       `json:"rules"`
	Sources          []Source          `json:"sources"`
	Recent           []Event           `json:"recent"`
	// TrackedSources is the size of the per-source table; Evicted counts sources
	// dropped from it and from the 404 counters because they were full.
	TrackedSources int    `json:"tracked_sources"`
	Evicted        uint64 `json:"evicted"`
}

// Total returns the number of unsolicited requests and connections so far.
func (s *Sensor) Total() uint64 { return s.total.Load() }

// Counts returns the per-rule counts.
func (s *Sensor) Counts() []RuleCount {
	out := make([]RuleCount, len(s.rules))
	for i := range s.rules {
		out[i] = RuleCount{Name: s.rules[i].Name, Category: s.rules[i].Category, Ref: s.rules[i].Ref, Count: s.counts[i].Load()}
	}
	return out
}

// Snapshot returns the totals, the top sources by requests (at most top) and the
// latest unsolicited requests, newest first.
func (s *Sensor) Snapshot(top int) Snapshot {
	out := Snapshot{UnsolicitedTotal: s.total.Load(), Categories: map[string]uint64{}, Rules: s.Counts(), Sources: []Source{}}
	for _, c := range Categories {
		out.Categories[c] = 0
	}
	for _, rc := range out.Rules {
		out.Categories[rc.Category] += rc.Count
	}
	s.mu.Lock()
	for a, so := range s.sources {
		src := Source{Requests: so.requests, Categories: map[string]uint64{}, Rules: map[string]uint64{},
			First: so.first, Last: so.last, SamplePaths: append([]string(nil), so.samples...)}
		if a.IsValid() {
			src.Source = a.String()
		}
		for i, c := range Categories {
			if so.cats[i] > 0 {
				src.Categories[c] = so.cats[i]
			}
		}
		for k, v := range so.rules {
			src.Rules[k] = v
		}
		out.Sources = append(out.Sources, src)
	}
	out.TrackedSources = len(s.sources)
	out.Evicted = s.evicted + s.evictedT
	n := len(s.recent)
	out.Recent = make([]Event, 0, n)
	for i := 0; i < n; i++ {
		out.Recent = append(out.Recent, s.recent[(s.recentAt+n-1-i)%n])
	}
	s.mu.Unlock()
	sort.Slice(out.Sources, func(i, j int) bool {
		a, b := out.Sources[i], out.Sources[j]
		if a.Requests != b.Requests {
			return a.Requests > b.Requests
		}
		return a.Source < b.Source
	})
	if top > 0 && len(out.Sources) > top {
		out.Sources = out.Sources[:top]
	}
	return out
}

// CategoryTotal returns the number of requests that got category so far.
func (s *Sensor) CategoryTotal(category string) uint64 {
	var n uint64
	for i := range s.rules {
		if s.rules[i].Category == category {
			n += s.counts[i].Load()
		}
	}
	return n
}

// Latest returns the most recent unsolicited event of category.
func (s *Sensor) Latest(category string) (Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.recent)
	for i := 0; i < n; i++ {
		if e := s.recent[(s.recentAt+n-1-i)%n]; e.Category == category {
			return e, true
		}
	}
	return Event{}, false
}
