package spool

import (
	"errors"
	"net/netip"
	"sync"
)

// ErrFull is the error of a body refused because the bodies already spooled hold
// the whole budget, or the sending client's network its share of it.
var ErrFull = errors.New("spool: request bodies in body_temp are at their limit (body_temp_max)")

// budget bounds the bytes of request bodies held in files at once: in all, so that
// slow clients cannot fill body_temp's file system (by default the machine's /tmp),
// and per client network, so that one client cannot take it all. Without it a few
// connections each dribbling a max_body-sized body would hold every byte of the
// disk for read_timeout.
type budget struct {
	mu     sync.Mutex
	max    int64 // 0: no limit
	perNet int64
	used   int64
	nets   map[netip.Prefix]int64
}

// perNetShare is the part of the budget one client network may hold.
const perNetShare = 4

func newBudget(max int64) *budget {
	return &budget{max: max, perNet: max / perNetShare, nets: map[netip.Prefix]int64{}}
}

// take reserves n more bytes for key's network, or reports false.
func (b *budget) take(key netip.Prefix, n int64) bool {
	if b == nil || b.max <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max || key.IsValid() && b.nets[key]+n > b.perNet {
		return false
	}
	b.used += n
	if key.IsValid() {
		b.nets[key] += n
	}
	return true
}

// give returns n bytes reserved for key's network.
func (b *budget) give(key netip.Prefix, n int64) {
	if b == nil || b.max <= 0 || n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if key.IsValid() {
		if b.nets[key] -= n; b.nets[key] <= 0 {
			delete(b.nets, key)
		}
	}
}
