// Package nftban keeps gantry's bans in the kernel as well, in an nftables
// table of its own ("inet gantry"), so that a banned source's packets are
// dropped before they reach gantry at all ([telescope.ban] nftables = true).
//
// The table holds two interval sets with per-element timeouts, banned4 and
// banned6 (an IPv4 /32, an IPv6 /64 or /48 each), two sets of gantry's own
// listening ports (tcp_ports, udp_ports), and a chain on the input hook that
// drops a banned source's packets to those ports only: SSH and every other
// service on the machine stay reachable from a banned address, so a ban never
// locks the operator out. The table is made at start (one left by a gantry
// that crashed is replaced) and deleted at Close. Changes are queued and
// applied by one goroutine, so that a ban never waits on netlink; the
// in-process check at accept stays on and covers whatever the kernel misses.
package nftban

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName is the table gantry owns, in the inet family.
const TableName = "gantry"

// maxPending bounds the queued changes: past it a change is dropped (the
// in-process check still enforces the ban) and counted.
const maxPending = 1 << 18

// batch is the most elements sent in one netlink transaction.
const batch = 512

// ErrNoCapability is returned by Open when gantry may not change nftables (it
// lacks CAP_NET_ADMIN).
var ErrNoCapability = errors.New("nftables needs CAP_NET_ADMIN")

// Options configure Open.
type Options struct {
	// TCPPorts and UDPPorts are gantry's listening ports, the only ones a
	// banned source's packets are dropped on.
	TCPPorts, UDPPorts []uint16
	Logger             *slog.Logger
}

// Table is gantry's nftables table. Its methods are safe for concurrent use
// and never block on the kernel.
type Table struct {
	conn   *nftables.Conn
	table  *nftables.Table
	set4   *nftables.Set
	set6   *nftables.Set
	log    *slog.Logger
	now    func() time.Time
	mirror map[netip.Prefix]time.Time // what the kernel holds, until when; the worker's own

	mu      sync.Mutex
	pending map[netip.Prefix]time.Time // zero time: remove
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	applied, dropped, failed atomic.Uint64
	failing                  atomic.Bool
}

// Open makes the table in the current network namespace; ErrNoCapability
// (wrapped) when gantry lacks the right to.
func Open(opts Options) (*Table, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// a lasting connection: its socket stays in the namespace it was opened in
	conn, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return nil, noCap(fmt.Errorf("nftables: %w", err))
	}
	t := &Table{conn: conn, log: log, now: time.Now, mirror: map[netip.Prefix]time.Time{},
		pending: map[netip.Prefix]time.Time{}, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if err := t.create(opts); err != nil {
		conn.CloseLasting()
		return nil, noCap(fmt.Errorf("nftables: table inet %s: %w", TableName, err))
	}
	go t.run()
	return t, nil
}

func noCap(err error) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%w: %w", ErrNoCapability, err)
	}
	return err
}

// create replaces any table of the name with a fresh one.
func (t *Table) create(opts Options) error {
	c := t.conn
	t.table = &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	// a table left by a gantry that did not shut down: gone first (an error
	// here is only "there was none")
	c.DelTable(t.table)
	c.Flush()
	c.AddTable(t.table)
	t.set4 = &nftables.Set{Table: t.table, Name: "banned4", KeyType: nftables.TypeIPAddr, Interval: true, HasTimeout: true}
	t.set6 = &nftables.Set{Table: t.table, Name: "banned6", KeyType: nftables.TypeIP6Addr, Interval: true, HasTimeout: true}
	tcp := &nftables.Set{Table: t.table, Name: "tcp_ports", KeyType: nftables.TypeInetService}
	udp := &nftables.Set{Table: t.table, Name: "udp_ports", KeyType: nftables.TypeInetService}
	for _, s := range []*nftables.Set{t.set4, t.set6} {
		if err := c.AddSet(s, nil); err != nil {
			return err
		}
	}
	for _, p := range []struct {
		s     *nftables.Set
		ports []uint16
	}{{tcp, opts.TCPPorts}, {udp, opts.UDPPorts}} {
		var els []nftables.SetElement
		for _, port := range p.ports {
			els = append(els, nftables.SetElement{Key: binaryutil.BigEndian.PutUint16(port)})
		}
		if err := c.AddSet(p.s, els); err != nil {
			return err
		}
	}
	chain := c.AddChain(&nftables.Chain{Name: "input", Table: t.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityRef(-10)})
	for _, v := range []struct {
		nfproto byte
		off, n  uint32
		set     *nftables.Set
	}{{unix.NFPROTO_IPV4, 12, 4, t.set4}, {unix.NFPROTO_IPV6, 8, 16, t.set6}} {
		for _, l4 := range []struct {
			proto byte
			ports *nftables.Set
		}{{unix.IPPROTO_TCP, tcp}, {unix.IPPROTO_UDP, udp}} {
			// meta nfproto V meta l4proto P th dport @ports ip(6) saddr @banned drop
			c.AddRule(&nftables.Rule{Table: t.table, Chain: chain, Exprs: []expr.Any{
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{v.nfproto}},
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{l4.proto}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Lookup{SourceRegister: 1, SetName: l4.ports.Name, SetID: l4.ports.ID},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: v.off, Len: v.n},
				&expr.Lookup{SourceRegister: 1, SetName: v.set.Name, SetID: v.set.ID},
				&expr.Counter{},
				&expr.Verdict{Kind: expr.VerdictDrop},
			}})
		}
	}
	return c.Flush()
}

// Add queues a ban of p until until.
func (t *Table) Add(p netip.Prefix, until time.Time) { t.queue(p, until) }

// Remove queues the lifting of p's ban.
func (t *Table) Remove(p netip.Prefix) { t.queue(p, time.Time{}) }

func (t *Table) queue(p netip.Prefix, until time.Time) {
	t.mu.Lock()
	if _, ok := t.pending[p]; !ok && len(t.pending) >= maxPending {
		t.mu.Unlock()
		t.dropped.Add(1)
		return
	}
	t.pending[p] = until
	t.mu.Unlock()
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// Stats are the table's counters.
type Stats struct {
	Applied uint64 `json:"applied"` // elements added or deleted
	Dropped uint64 `json:"dropped"` // changes dropped because the queue was full
	Failed  uint64 `json:"failed"`  // changes the kernel refused
}

// Stats returns the counters.
func (t *Table) Stats() Stats {
	return Stats{Applied: t.applied.Load(), Dropped: t.dropped.Load(), Failed: t.failed.Load()}
}

// Close applies nothing more and deletes the table: gantry gone, its bans
// are no one's to keep.
func (t *Table) Close() error {
	var err error
	t.once.Do(func() {
		close(t.stop)
		<-t.done
		t.conn.DelTable(t.table)
		err = t.conn.Flush()
		t.conn.CloseLasting()
	})
	return err
}

func (t *Table) run() {
	defer close(t.done)
	for {
		select {
		case <-t.stop:
			return
		case <-t.kick:
		}
		t.mu.Lock()
		work := t.pending
		t.pending = map[netip.Prefix]time.Time{}
		t.mu.Unlock()
		t.apply(work)
	}
}

// apply makes the kernel's sets hold work: each prefix banned until its time,
// or lifted for the zero time.
func (t *Table) apply(work map[netip.Prefix]time.Time) {
	now := t.now()
	var dels, adds []netip.Prefix
	for p, until := range work {
		if old, ok := t.mirror[p]; ok {
			delete(t.mirror, p)
			if old.After(now.Add(time.Second)) {
				dels = append(dels, p) // to be replaced, or lifted
			}
		}
		if until.After(now.Add(time.Second)) {
			adds = append(adds, p)
		}
	}
	// an IPv6 /48 replaces the /64s inside it (interval sets refuse overlaps)
	for _, p := range adds {
		if p.Addr().Is6() && p.Bits() == 48 {
			for q, until := range t.mirror {
				if q.Bits() > 48 && p.Overlaps(q) {
					delete(t.mirror, q)
					if until.After(now.Add(time.Second)) {
						dels = append(dels, q)
					}
				}
			}
		}
	}
	// deletes go alone: one the kernel already expired fails, and must not take
	// a batch of adds with it
	for _, p := range dels {
		t.send(p, time.Time{}, now)
	}
	for i := 0; i < len(adds); i += batch {
		chunk := adds[i:min(i+batch, len(adds))]
		var keep []netip.Prefix
		for _, p := range chunk {
			if p.Addr().Is6() && p.Bits() > 48 {
				if w, ok := t.mirror[netip.PrefixFrom(p.Addr(), 48).Masked()]; ok && w.After(now) {
					continue // its /48 is banned already
				}
			}
			keep = append(keep, p)
		}
		if err := t.sendAdds(keep, work, now); err != nil {
			// one bad element fails the batch: then one at a time
			for _, p := range keep {
				t.send(p, work[p], now)
			}
		}
	}
}

// sendAdds adds ps in one transaction.
func (t *Table) sendAdds(ps []netip.Prefix, until map[netip.Prefix]time.Time, now time.Time) error {
	if len(ps) == 0 {
		return nil
	}
	var els4, els6 []nftables.SetElement
	for _, p := range ps {
		els, ok := elements(p, until[p].Sub(now))
		if !ok {
			continue
		}
		if p.Addr().Is4() {
			els4 = append(els4, els...)
		} else {
			els6 = append(els6, els...)
		}
	}
	if len(els4) > 0 {
		if err := t.conn.SetAddElements(t.set4, els4); err != nil {
			return err
		}
	}
	if len(els6) > 0 {
		if err := t.conn.SetAddElements(t.set6, els6); err != nil {
			return err
		}
	}
	if err := t.conn.Flush(); err != nil {
		return err
	}
	for _, p := range ps {
		t.mirror[p] = until[p]
	}
	t.applied.Add(uint64(len(ps)))
	return nil
}

// send adds p until until, or deletes it for the zero time, alone.
func (t *Table) send(p netip.Prefix, until time.Time, now time.Time) {
	set := t.set4
	if p.Addr().Is6() {
		set = t.set6
	}
	els, ok := elements(p, until.Sub(now))
	if !ok {
		return
	}
	var err error
	if until.IsZero() {
		err = t.conn.SetDeleteElements(set, els)
	} else {
		err = t.conn.SetAddElements(set, els)
	}
	if err == nil {
		err = t.conn.Flush()
	}
	if err != nil && !until.IsZero() {
		// an element the kernel still holds (expired by its clock, not yet by
		// ours) overlaps: out with it, and in again
		if t.conn.SetDeleteElements(set, els) == nil {
			t.conn.Flush()
		}
		if err = t.conn.SetAddElements(set, els); err == nil {
			err = t.conn.Flush()
		}
	}
	if err != nil {
		if until.IsZero() {
			return // gone already: expired in the kernel
		}
		t.failed.Add(1)
		if !t.failing.Swap(true) {
			t.log.Warn("nftables refused a ban; gantry enforces it itself", "source", p.String(), "err", err)
		}
		return
	}
	if !until.IsZero() {
		t.mirror[p] = until
	}
	t.applied.Add(1)
	t.failing.Store(false)
}

// elements are p as an interval: its first address, with the timeout d, and
// the address past its last. false for a prefix that ends the address space
// (no address past it; gantry's check covers it).
func elements(p netip.Prefix, d time.Duration) ([]nftables.SetElement, bool) {
	p = p.Masked()
	start := p.Addr().AsSlice()
	end := append([]byte(nil), start...)
	// add 1 at bit p.Bits() - 1: the address past the prefix
	bit := p.Bits() - 1
	if bit < 0 {
		return nil, false
	}
	carry := true
	for i := bit / 8; i >= 0 && carry; i-- {
		inc := byte(1)
		if i == bit/8 {
			inc = 1 << (7 - bit%8)
		}
		sum := uint16(end[i]) + uint16(inc)
		end[i] = byte(sum)
		carry = sum > 0xff
	}
	if carry {
		return nil, false
	}
	// whole seconds: the ban's end is kept to the second, and a timeout of
	// "59m59s988ms" in `nft list` reads as noise
	d = max(d.Round(time.Second), time.Second)
	return []nftables.SetElement{{Key: start, Timeout: d}, {Key: end, IntervalEnd: true}}, true
}
