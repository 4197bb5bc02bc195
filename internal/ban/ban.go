// Package ban turns what the telescope sees into bans, as fail2ban does beside
// nginx, without a second tool: an exploit probe, repeated scanning, dark-port
// hits, failed admin logins and rate-limit overflows ban their source, whose
// connections are then closed at accept on every listener (Listener, Admit),
// before TLS or any parsing, and whose open connections are closed at once.
//
// The unit is one client (clientnet.Host): an IPv4 address, an IPv6 /64.
// Loopback, private and link-local ranges, the allow list and trusted proxies
// are never banned. Bans are bounded (Max, the oldest dropped and counted),
// grow for repeat offenders, and survive restarts in a file.
package ban

import (
	"container/list"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"gantry/internal/clientnet"
	"gantry/internal/telescope"
)

// Rules: why a source was banned.
const (
	Exploit     = "exploit"
	Scanner     = "scanner"
	DarkPort    = "dark-port"
	AdminLogin  = "admin-login"
	RateLimited = "rate-limited"
	Manual      = "manual"
	// Escalated bans an IPv6 /48 after Options.Escalate of its /64s were banned.
	Escalated = "ipv6-48"
)

// Options configure a List; zero fields take their defaults.
type Options struct {
	// Durations is how long the first, second, ... ban of a source lasts, the
	// last repeating (default 10m, 1h, 24h).
	Durations []time.Duration
	// ScannerHits in ScannerWindow, and DarkPorts, AdminLogins and RateLimited
	// in Window, ban a source; 0 never bans for that rule. An exploit always bans.
	ScannerHits   int
	ScannerWindow time.Duration
	DarkPorts     int
	AdminLogins   int
	RateLimited   int
	Window        time.Duration
	// Escalate bans an IPv6 /48 once that many of its /64s were banned within
	// Window; 0 never.
	Escalate int
	// Allow and Trusted (the proxies in front of gantry) are never banned.
	Allow   []netip.Prefix
	Trusted []netip.Prefix
	// Max caps the bans held, active or remembered for growth (default 100000);
	// MaxCounters the sources being counted toward a ban (default 16384).
	Max         int
	MaxCounters int
	// Remember is how long an expired ban is kept so that the next one grows
	// (default 7 days).
	Remember time.Duration
	// OnBan, when set, is told of every ban this node issues (never of one
	// imported from another node): the telescope's export.
	OnBan func(Entry)
	// File keeps the bans across restarts; "" keeps them in memory only.
	File   string
	Logger *slog.Logger
	// Now is the clock (tests move it to expire bans); default time.Now.
	Now func() time.Time
}

// Entry is one ban as the API shows it.
type Entry struct {
	Source  string    `json:"source"` // the unit: "203.0.113.7/32", "2001:db8:1:2::/64"
	Rule    string    `json:"rule"`
	Sample  string    `json:"sample"` // the request or bytes that decided it
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until"`
	Strikes int       `json:"strikes"` // bans of this source so far, this one included
	Refused uint64    `json:"refused"` // connections closed at accept during this ban
	// Origin is the peer the ban was imported from ([telescope.ban] import);
	// "" for this node's own.
	Origin string `json:"origin,omitempty"`
}

type entry struct {
	key     netip.Prefix
	rule    string
	sample  string
	since   time.Time
	until   time.Time
	strikes int
	origin  string // the peer it was imported from; "" for this node's own
	refused atomic.Uint64
	told    atomic.Bool   // a request forwarded for it was refused and logged
	elem    *list.Element // in List.order
}

// counter counts one source's offenses of each counted rule in a fixed window.
type counter struct {
	start [4]time.Time
	n     [4]int
	last  time.Time
}

var counted = map[string]int{Scanner: 0, DarkPort: 1, AdminLogin: 2, RateLimited: 3}

// List is the set of bans. It is safe for concurrent use.
type List struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time

	self  []netip.Addr // the machine's own addresses, never banned
	held  atomic.Int64 // len(bans): Banned skips the lock when there are none
	mu    sync.RWMutex
	bans  map[netip.Prefix]*entry
	nwide int // of bans, the IPv6 /48s: an IPv6 lookup checks its /48 only when there are some
	// order holds the bans oldest first (by when they were last banned), for
	// eviction past Max.
	order   *list.List
	issued  map[string]uint64 // by rule
	evicted uint64

	cmu      sync.Mutex
	counters map[netip.Prefix]*counter
	wide     map[netip.Prefix]*wideHits // by /48, for Escalate
	cevicted uint64

	omu  sync.Mutex
	open map[netip.Prefix]map[closer]struct{}

	refused     atomic.Uint64
	refusedReqs atomic.Uint64
	polls       atomic.Uint64 // successful polls of import sources
	// smu guards spare: this node's addresses and its import peers', which
	// no imported ban covers
	smu    sync.Mutex
	spare  map[netip.Addr]bool
	kernel atomic.Pointer[kernelBox]
	dirty  atomic.Bool
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

type closer interface{ Close() error }

// New makes a List, with the bans of opts.File when it exists, and starts
// saving changes to it.
func New(opts Options) (*List, error) {
	if len(opts.Durations) == 0 {
		opts.Durations = []time.Duration{10 * time.Minute, time.Hour, 24 * time.Hour}
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opts.Max, 100000)
	def(&opts.MaxCounters, 16384)
	for _, d := range []*time.Duration{&opts.ScannerWindow, &opts.Window} {
		if *d <= 0 {
			*d = 10 * time.Minute
		}
	}
	if opts.Remember <= 0 {
		opts.Remember = 7 * 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &List{opts: opts, log: log, now: opts.Now, bans: map[netip.Prefix]*entry{}, order: list.New(),
		issued: map[string]uint64{}, counters: map[netip.Prefix]*counter{}, wide: map[netip.Prefix]*wideHits{}, spare: map[netip.Addr]bool{}, open: map[netip.Prefix]map[closer]struct{}{},
		stop: make(chan struct{}), done: make(chan struct{})}
	l.self = selfAddrs()
	if opts.File != "" {
		if err := l.load(); err != nil {
			return nil, err
		}
	}
	go l.saver()
	return l, nil
}

// Close saves the bans and stops the saver.
func (l *List) Close() error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		if l.opts.File != "" {
			err = l.save()
		}
	})
	return err
}

// never reports whether a unit is one gantry never bans: not a routable
// client address, one the allow list or a trusted proxy covers, or one that
// holds the machine's own address.
func (l *List) never(k netip.Prefix) bool {
	a := k.Addr()
	if !k.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsUnspecified() || a.IsLinkLocalUnicast() ||
		a.IsMulticast() || cgnat.Contains(a) {
		return true
	}
	for _, a := range l.self {
		if k.Contains(a) {
			return true
		}
	}
	for _, lists := range [][]netip.Prefix{l.opts.Allow, l.opts.Trusted} {
		for _, p := range lists {
			if p.Overlaps(k) {
				return true
			}
		}
	}
	return false
}

// selfAddrs are the addresses of the machine's interfaces (of its network
// namespace): its requests to itself, or an app calling its own site, come
// from them, and a ban of one (or of an escalated /48 holding one) would cut
// the machine off itself.
func selfAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && !ip.Unmap().IsLoopback() {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598): as private
// as 10/8 from gantry's side, and one address there is many customers.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Banned reports whether a's unit is banned now. It is the check at accept:
// a lock-free test when there are no bans, a map lookup otherwise.
func (l *List) Banned(a netip.Addr) bool { return l.banOf(a) != nil }

// banOf returns a's ban when one is in force: its unit's, or for IPv6 its
// /48's.
func (l *List) banOf(a netip.Addr) *entry {
	if l.held.Load() == 0 {
		return nil
	}
	k := clientnet.Host(a)
	var w *entry
	var until, wuntil time.Time
	l.mu.RLock()
	e := l.bans[k]
	if e != nil {
		until = e.until
	}
	if l.nwide > 0 && k.Bits() == 64 {
		if w = l.bans[wideOf(k)]; w != nil {
			wuntil = w.until
		}
	}
	l.mu.RUnlock()
	if e == nil && w == nil {
		return nil // a miss reads no clock
	}
	now := l.now()
	switch {
	case e != nil && now.Before(until):
		return e
	case w != nil && now.Before(wuntil):
		return w
	}
	return nil
}

// refuse is Banned that counts the refusal.
func (l *List) refuse(a netip.Addr) bool {
	e := l.banOf(a)
	if e == nil {
		return false
	}
	e.refused.Add(1)
	l.refused.Add(1)
	return true
}

// Offense records that a did something rule counts; it bans a's unit once the
// rule's count is reached within its window (an exploit at once). sample is what
// it did, shown with the ban.
func (l *List) Offense(a netip.Addr, rule, sample string) {
	k := clientnet.Host(a)
	if l.never(k) {
		return
	}
	threshold, window := 1, time.Duration(0)
	switch rule {
	case Exploit:
	case Scanner:
		threshold, window = l.opts.ScannerHits, l.opts.ScannerWindow
	case DarkPort:
		threshold, window = l.opts.DarkPorts, l.opts.Window
	case AdminLogin:
		threshold, window = l.opts.AdminLogins, l.opts.Window
	case RateLimited:
		threshold, window = l.opts.RateLimited, l.opts.Window
	default:
		return
	}
	if threshold <= 0 {
		return
	}
	now := l.now()
	if l.active(k, now) {
		// a request in flight when the ban came, or on a connection that slipped
		// past it: no new ban, but nothing of the source stays open
		l.closeOpen(k)
		return
	}
	if threshold > 1 && !l.count(k, counted[rule], threshold, window, now) {
		return
	}
	l.ban(k, rule, sample, 0, now)
}

func (l *List) active(k netip.Prefix, now time.Time) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if e := l.bans[k]; e != nil && now.Before(e.until) {
		return true
	}
	if l.nwide > 0 && k.Addr().Is6() && k.Bits() == 64 {
		e := l.bans[wideOf(k)]
		return e != nil && now.Before(e.until)
	}
	return false
}

// count adds one to k's count of rule i and reports whether it reached
// threshold within window (and starts it again if so).
func (l *List) count(k netip.Prefix, i, threshold int, window time.Duration, now time.Time) bool {
	l.cmu.Lock()
	defer l.cmu.Unlock()
	c := l.counters[k]
	if c == nil {
		if len(l.counters) >= l.opts.MaxCounters {
			if telescope.EvictSampled(l.counters, func(c *counter) time.Time { return c.last }) {
				l.cevicted++
			}
		}
		c = &counter{}
		l.counters[k] = c
	}
	c.last = now
	if now.Sub(c.start[i]) > window {
		c.start[i], c.n[i] = now, 0
	}
	c.n[i]++
	if c.n[i] < threshold {
		return false
	}
	c.n[i] = 0
	return true
}

// ErrNever is returned by Ban for a source gantry never bans.
var ErrNever = errors.New("never banned: loopback, private, link-local, allow-listed, a trusted proxy or this machine")

// Ban bans the unit of source (an address, or a unit prefix) by hand, for d or,
// when d is 0, the duration its strikes call for.
func (l *List) Ban(source, reason string, d time.Duration) (Entry, error) {
	k, err := Unit(source)
	if err != nil {
		return Entry{}, err
	}
	if l.never(k) {
		return Entry{}, fmt.Errorf("ban %s: %w", k, ErrNever)
	}
	return l.ban(k, Manual, reason, d, l.now()), nil
}

// Unit reads an address ("203.0.113.7", "2001:db8::1") or a unit prefix
// ("203.0.113.7/32", "2001:db8::/64", an escalated "2001:db8::/48") as the
// unit bans apply to.
func Unit(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if k := clientnet.Host(p.Addr()); k == p.Masked() {
			return k, nil
		}
		if k := clientnet.Host(p.Addr()); k.Bits() == 64 && p.Bits() == wideBits {
			if w := wideOf(k); wideAllowed(w) {
				return w, nil
			}
			return netip.Prefix{}, fmt.Errorf("source %q: this /48 holds NAT64's prefix, every IPv4 client translated to IPv6; ban its /64s, or the translated addresses one by one", s)
		}
		return netip.Prefix{}, fmt.Errorf("source %q: bans apply to one address (IPv4), one /64 or one /48 (IPv6), not to another range", s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("source %q: want an IP address", s)
	}
	return clientnet.Host(a), nil
}

func (l *List) ban(k netip.Prefix, rule, sample string, d time.Duration, now time.Time) Entry {
	if len(sample) > 256 {
		sample = sample[:256]
	}
	l.mu.Lock()
	e := l.bans[k]
	if e == nil {
		if len(l.bans) >= l.opts.Max {
			l.evictOldest()
		}
		e = &entry{key: k}
		l.insert(e)
	} else {
		l.order.MoveToBack(e.elem)
	}
	if now.Before(e.until) && rule != Manual {
		// banned already (a race with another offense): no second strike
		l.mu.Unlock()
		return e.export()
	}
	if e.strikes < maxStrikes {
		e.strikes++
	}
	if d <= 0 {
		d = l.opts.Durations[min(e.strikes, len(l.opts.Durations))-1]
	}
	e.rule, e.sample, e.since, e.until, e.origin = rule, sample, now, now.Add(d), ""
	e.refused.Store(0)
	e.told.Store(false)
	l.issued[rule]++
	out := e.export()
	l.kernelAdd(k, e.until)
	l.mu.Unlock()
	l.dirty.Store(true)
	l.log.Warn("source banned", "source", k.String(), "rule", rule, "sample", sample, "for", d.String(), "strikes", out.Strikes)
	l.closeOpen(k)
	if l.opts.OnBan != nil {
		l.opts.OnBan(out)
	}
	l.escalate(k, now)
	return out
}

// maxStrikes bounds a source's strikes, so that a count read from a damaged
// bans file cannot overflow into a negative index of Durations.
const maxStrikes = 1 << 20

// evictOldest drops the oldest ban; l.mu is held.
func (l *List) evictOldest() {
	front := l.order.Front()
	if front == nil {
		return
	}
	l.remove(front.Value.(*entry))
	l.evicted++
}

// insert adds e, the newest; l.mu is held.
func (l *List) insert(e *entry) {
	e.elem = l.order.PushBack(e)
	l.bans[e.key] = e
	l.held.Store(int64(len(l.bans)))
	if isWide(e.key) {
		l.nwide++
	}
}

// remove drops e from the bans; l.mu is held.
func (l *List) remove(e *entry) {
	l.order.Remove(e.elem)
	delete(l.bans, e.key)
	l.held.Store(int64(len(l.bans)))
	if isWide(e.key) {
		l.nwide--
	}
	if l.now().Before(e.until) {
		l.kernelRemove(e.key)
	}
}

// Unban lifts the ban of source's unit and forgets its strikes; it reports
// whether there was one, in force or remembered.
func (l *List) Unban(source string) (bool, error) {
	k, err := Unit(source)
	if err != nil {
		return false, err
	}
	l.mu.Lock()
	e := l.bans[k]
	if e != nil {
		l.remove(e)
	}
	l.mu.Unlock()
	if e == nil {
		return false, nil
	}
	l.dirty.Store(true)
	l.log.Info("source unbanned", "source", k.String())
	return true, nil
}

func (e *entry) export() Entry {
	return Entry{Source: e.key.String(), Rule: e.rule, Sample: e.sample, Since: e.since, Until: e.until,
		Strikes: e.strikes, Refused: e.refused.Load(), Origin: e.origin}
}

// Stats are the counts /metrics shows.
type Stats struct {
	Active     int               `json:"active"`
	Remembered int               `json:"remembered"` // expired, kept so that the next ban grows
	Issued     map[string]uint64 `json:"issued"`     // bans so far, by rule
	Refused    uint64            `json:"refused"`    // connections closed at accept
	// RefusedRequests counts requests answered 403 because the client a trusted
	// proxy forwarded them for is banned.
	RefusedRequests uint64 `json:"refused_requests"`
	// Imported counts the active bans taken from other nodes, ImportPolls the
	// answers of theirs applied.
	Imported    int    `json:"imported"`
	ImportPolls uint64 `json:"import_polls"`
	Evicted     uint64 `json:"evicted"`  // bans dropped past max
	Counting    int    `json:"counting"` // sources being counted toward a ban
	// CountersEvicted counts sources dropped from the counters because they were full.
	CountersEvicted uint64 `json:"counters_evicted"`
}

// Snapshot returns the active bans, newest first (at most top; 0: all), and the
// counts.
func (l *List) Snapshot(top int) ([]Entry, Stats) {
	now := l.now()
	st := Stats{Issued: map[string]uint64{}, Refused: l.refused.Load(), RefusedRequests: l.refusedReqs.Load(), ImportPolls: l.polls.Load()}
	out := []Entry{}
	l.mu.RLock()
	for e := l.order.Back(); e != nil; e = e.Prev() {
		en := e.Value.(*entry)
		if !now.Before(en.until) {
			st.Remembered++
			continue
		}
		st.Active++
		if en.origin != "" {
			st.Imported++
		}
		if top <= 0 || len(out) < top {
			out = append(out, en.export())
		}
	}
	for k, v := range l.issued {
		st.Issued[k] = v
	}
	st.Evicted = l.evicted
	l.mu.RUnlock()
	l.cmu.Lock()
	st.Counting, st.CountersEvicted = len(l.counters), l.cevicted
	l.cmu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Since.After(out[j].Since) })
	return out, st
}

// Shared is what a peer importing from this node takes (GET /api/bans?own=1):
// this node's own bans in force, never those it imported, the newest first, at
// most as many as an importer reads; more reports that older ones were left
// out, so that the importer does not lift them.
func (l *List) Shared() (bans []Entry, more bool) {
	now := l.now()
	bans = []Entry{}
	l.mu.RLock()
	defer l.mu.RUnlock()
	for e := l.order.Back(); e != nil; e = e.Prev() {
		en := e.Value.(*entry)
		if en.origin != "" || !now.Before(en.until) {
			continue
		}
		if len(bans) == maxImport {
			return bans, true
		}
		bans = append(bans, en.export())
	}
	return bans, false
}

// prune forgets bans expired longer than Remember ago, and counters idle for
// longer than their windows.
func (l *List) prune() {
	now := l.now()
	l.mu.Lock()
	for e := l.order.Front(); e != nil; {
		next := e.Next()
		if en := e.Value.(*entry); now.Sub(en.until) > l.opts.Remember {
			l.remove(en)
			l.dirty.Store(true)
		}
		e = next
	}
	l.mu.Unlock()
	idle := max(l.opts.ScannerWindow, l.opts.Window)
	l.cmu.Lock()
	for k, c := range l.counters {
		if now.Sub(c.last) > idle {
			delete(l.counters, k)
		}
	}
	for k, w := range l.wide {
		if now.Sub(w.last()) > l.opts.Window {
			delete(l.wide, k)
		}
	}
	l.cmu.Unlock()
}
