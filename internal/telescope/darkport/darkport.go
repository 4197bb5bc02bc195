// Package darkport runs the telescope's dark ports: listeners on ports that nothing
// serves. A TCP connection is accepted, up to 1 KB is read with a short deadline, the
// hit is recorded and the connection closed; a UDP datagram is recorded. Nothing is
// ever answered, so a scanner learns no more than that the port is open. The payload
// rules of probes.toml name what was sent (a CUPS exploit, an SNMP GetRequest, a TLS
// ClientHello...) and what it carries (the callback URL, the community, the SNI).
package darkport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gantry/internal/telescope"
)

// Port is one port to watch.
type Port struct {
	Addr     string // "host:port"; empty host: every address
	Protocol string // "tcp" or "udp"
}

// Options configures the dark ports; zero fields take their defaults.
type Options struct {
	Ports []Port
	// ReadTimeout bounds the wait for a TCP client's first bytes (default 3s).
	ReadTimeout time.Duration
	// MaxBytes is how much of a connection or datagram is read (default 1024).
	MaxBytes int
	// MaxConns caps the TCP connections being read at once (default 256); past it new
	// connections are recorded and closed without reading.
	MaxConns int
	// MaxSources caps the (source, port) table (default 4096); past it the least
	// recently seen of a sample is evicted and counted.
	MaxSources int
	Logger     *slog.Logger
	// Banned, when set, says whether a source is banned: its hits are still
	// recorded, and counted as banned besides.
	Banned func(netip.Addr) bool
	// OnTCP, when set, is told of every TCP hit, with the bytes the source sent:
	// one that completed a handshake, so its source address is its own (a
	// spoofed SYN never reaches Accept; UDP sources are never reported, anyone
	// can forge them).
	OnTCP func(src netip.Addr, port uint16, data []byte)
	// Rules name the payloads; nil: DefaultRules.
	Rules []Rule
	// OnUDP, when set, is told of every UDP datagram, whose source may be forged
	// (the export records it as seen, bans never count it); data is only valid
	// during the call.
	OnUDP func(src netip.Addr, port uint16, data []byte)
}

// Hit is one row of the table: a source's hits on one dark port.
type Hit struct {
	Source     string    `json:"source"`
	Port       int       `json:"port"`
	Protocol   string    `json:"protocol"`
	Hits       uint64    `json:"hits"`
	First      time.Time `json:"first"`
	Last       time.Time `json:"last"`
	FirstBytes string    `json:"first_bytes"` // Go-quoted, from the first hit that sent any
	Banned     uint64    `json:"banned"`      // of Hits, those from the source while it was banned
	// Rule, Category and Detail name the first payload a rule matched, and what
	// it carries (a URL, a community string, a server name).
	Rule     string `json:"rule,omitempty"`
	Category string `json:"category,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// RuleCount is a payload rule with the hits it matched.
type RuleCount struct {
	Name     string `json:"name"`
	Category string `json:"category"`
	Ref      string `json:"ref"`
	Count    uint64 `json:"count"`
}

type key struct {
	src   netip.Addr
	port  uint16
	proto string
}

type entry struct {
	hits        uint64
	banned      uint64
	first, last time.Time
	firstBytes  string
	rule        int // index in rules, -1: none matched yet
	detail      string
}

// Ports is a set of running dark ports.
type Ports struct {
	opts   Options
	log    *slog.Logger
	total  atomic.Uint64
	slots  chan struct{}
	wg     sync.WaitGroup
	closed chan struct{}

	mu      sync.Mutex
	lns     []net.Listener
	pcs     []net.PacketConn
	table   map[key]*entry
	active  map[net.Conn]struct{} // being read; nil once closed
	perPort map[string]uint64     // "23/tcp" -> hits
	evicted uint64
	banned  uint64   // hits from banned sources
	byRule  []uint64 // hits by index in opts.Rules
}

// Start binds every port (so that an error names the port at once) and serves them
// until Close.
func Start(ctx context.Context, opts Options) (*Ports, error) {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opts.MaxBytes, 1024)
	def(&opts.MaxConns, 256)
	def(&opts.MaxSources, 4096)
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 3 * time.Second
	}
	if opts.Rules == nil {
		opts.Rules = DefaultRules()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Ports{opts: opts, log: log, slots: make(chan struct{}, opts.MaxConns), closed: make(chan struct{}),
		table: map[key]*entry{}, active: map[net.Conn]struct{}{}, perPort: map[string]uint64{},
		byRule: make([]uint64, len(opts.Rules))}
	var lc net.ListenConfig
	for _, port := range opts.Ports {
		switch port.Protocol {
		case "tcp":
			ln, err := lc.Listen(ctx, "tcp", port.Addr)
			if err != nil {
				p.Close()
				return nil, fmt.Errorf("dark port %s/tcp: %w", port.Addr, err)
			}
			p.lns = append(p.lns, ln)
		case "udp":
			pc, err := lc.ListenPacket(ctx, "udp", port.Addr)
			if err != nil {
				p.Close()
				return nil, fmt.Errorf("dark port %s/udp: %w", port.Addr, err)
			}
			p.pcs = append(p.pcs, pc)
		default:
			p.Close()
			return nil, fmt.Errorf("dark port %s: protocol %q: want tcp or udp", port.Addr, port.Protocol)
		}
	}
	for _, ln := range p.lns {
		p.wg.Add(1)
		go p.acceptLoop(ln)
	}
	for _, pc := range p.pcs {
		p.wg.Add(1)
		go p.udpLoop(pc)
	}
	return p, nil
}

// Addrs returns the bound addresses as "addr/proto" (useful with port 0).
func (p *Ports) Addrs() []string {
	var out []string
	for _, ln := range p.lns {
		out = append(out, ln.Addr().String()+"/tcp")
	}
	for _, pc := range p.pcs {
		out = append(out, pc.LocalAddr().String()+"/udp")
	}
	return out
}

func localPort(a net.Addr) uint16 {
	switch a := a.(type) {
	case *net.TCPAddr:
		return uint16(a.Port)
	case *net.UDPAddr:
		return uint16(a.Port)
	}
	return 0
}

func (p *Ports) acceptLoop(ln net.Listener) {
	defer p.wg.Done()
	port := localPort(ln.Addr())
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-p.closed:
				return
			default:
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// out of file descriptors: back off as net/http does
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				p.log.Warn("dark port accept", "port", port, "err", err)
				time.Sleep(delay)
				continue
			}
			p.log.Error("dark port stopped", "port", port, "err", err)
			return
		}
		delay = 0
		src := addrOf(c.RemoteAddr())
		select {
		case p.slots <- struct{}{}:
		default:
			// too many slow clients at once: count the hit, read nothing
			c.Close()
			p.record(src, port, "tcp", nil, nil)
			if p.opts.OnTCP != nil {
				p.opts.OnTCP(src, port, nil)
			}
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() { <-p.slots }()
			p.readConn(c, src, port)
		}()
	}
}

func (p *Ports) readConn(c net.Conn, src netip.Addr, port uint16) {
	p.mu.Lock()
	if p.active == nil {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.active[c] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.active, c)
		p.mu.Unlock()
		c.Close()
	}()
	if tc, ok := c.(*net.TCPConn); ok {
		// close with RST rather than linger in FIN_WAIT: the peer gets nothing either way
		tc.SetLinger(0)
	}
	c.SetReadDeadline(time.Now().Add(p.opts.ReadTimeout))
	buf := make([]byte, p.opts.MaxBytes)
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			break
		}
	}
	var d Detail
	p.record(src, port, "tcp", buf[:n], &d)
	if p.opts.OnTCP != nil {
		p.opts.OnTCP(src, port, buf[:n])
	}
}

func (p *Ports) udpLoop(pc net.PacketConn) {
	defer p.wg.Done()
	port := localPort(pc.LocalAddr())
	buf := make([]byte, 64<<10)
	var d Detail
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			select {
			case <-p.closed:
				return
			default:
			}
			p.log.Warn("dark port read", "port", port, "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		src, data := addrOf(from), buf[:min(n, p.opts.MaxBytes)]
		p.record(src, port, "udp", data, &d)
		if p.opts.OnUDP != nil {
			p.opts.OnUDP(src, port, data)
		}
	}
}

func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// record counts a hit; d is the caller's scratch space for the payload's detail.
func (p *Ports) record(src netip.Addr, port uint16, proto string, data []byte, d *Detail) {
	p.total.Add(1)
	now := time.Now()
	rule := -1
	if d != nil {
		rule = Classify(p.opts.Rules, proto, data, d)
	}
	k := key{src, port, proto}
	banned := p.opts.Banned != nil && p.opts.Banned(src)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.perPort[strconv.Itoa(int(port))+"/"+proto]++
	e := p.table[k]
	if e == nil {
		if len(p.table) >= p.opts.MaxSources {
			p.evict()
		}
		e = &entry{first: now, rule: -1}
		p.table[k] = e
	}
	e.hits++
	e.last = now
	if banned {
		e.banned++
		p.banned++
	}
	if e.firstBytes == "" && len(data) > 0 {
		e.firstBytes = strconv.QuoteToASCII(string(data))
	}
	if rule >= 0 {
		p.byRule[rule]++
		if e.rule < 0 {
			e.rule, e.detail = rule, d.String()
		}
	}
}

func (p *Ports) evict() {
	if telescope.EvictSampled(p.table, func(e *entry) time.Time { return e.last }) {
		p.evicted++
	}
}

// Total returns the number of hits so far.
func (p *Ports) Total() uint64 { return p.total.Load() }

// Snapshot is the dark ports' state for the admin API.
type Snapshot struct {
	Listening []string          `json:"listening"` // "addr/proto" of every dark port
	HitsTotal uint64            `json:"hits_total"`
	Ports     map[string]uint64 `json:"ports"`
	Sources   []Hit             `json:"sources"`
	Evicted   uint64            `json:"evicted"`
	// BannedHits counts the hits from sources banned at the time.
	BannedHits uint64 `json:"banned_hits"`
	// Rules are the payload rules with the hits each matched.
	Rules []RuleCount `json:"rules"`
}

// Snapshot returns the totals and the top rows by hits (at most top; 0: all).
func (p *Ports) Snapshot(top int) Snapshot {
	out := Snapshot{Listening: p.Addrs(), HitsTotal: p.total.Load(), Ports: map[string]uint64{}, Sources: []Hit{}}
	p.mu.Lock()
	for k, v := range p.perPort {
		out.Ports[k] = v
	}
	for k, e := range p.table {
		h := Hit{Port: int(k.port), Protocol: k.proto, Hits: e.hits, First: e.first, Last: e.last, FirstBytes: e.firstBytes, Banned: e.banned}
		if k.src.IsValid() {
			h.Source = k.src.String()
		}
		if e.rule >= 0 {
			r := &p.opts.Rules[e.rule]
			h.Rule, h.Category, h.Detail = r.Name, r.Category, e.detail
		}
		out.Sources = append(out.Sources, h)
	}
	out.Evicted, out.BannedHits = p.evicted, p.banned
	out.Rules = make([]RuleCount, len(p.opts.Rules))
	for i, r := range p.opts.Rules {
		out.Rules[i] = RuleCount{Name: r.Name, Category: r.Category, Ref: r.Ref, Count: p.byRule[i]}
	}
	p.mu.Unlock()
	sort.Slice(out.Sources, func(i, j int) bool {
		a, b := out.Sources[i], out.Sources[j]
		if a.Hits != b.Hits {
			return a.Hits > b.Hits
		}
		return a.Last.After(b.Last)
	})
	if top > 0 && len(out.Sources) > top {
		out.Sources = out.Sources[:top]
	}
	return out
}

// Close stops every listener and waits for the connections being read.
func (p *Ports) Close() error {
	select {
	case <-p.closed:
		return nil
	default:
	}
	close(p.closed)
	p.mu.Lock()
	for c := range p.active {
		c.Close()
	}
	p.active = nil
	p.mu.Unlock()
	var errs []error
	for _, ln := range p.lns {
		if err := ln.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, pc := range p.pcs {
		if err := pc.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	p.wg.Wait()
	return errors.Join(errs...)
}
