package ban

import (
	"net/netip"
	"time"
)

// Kernel is where bans are enforced besides gantry's own check: the nftables
// table of [telescope.ban] nftables. Its methods must not block.
type Kernel interface {
	Add(k netip.Prefix, until time.Time)
	Remove(k netip.Prefix)
}

type kernelBox struct{ k Kernel }

// SetKernel hands every ban in force to k, and every change from now on.
func (l *List) SetKernel(k Kernel) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kernel.Store(&kernelBox{k})
	now := l.now()
	for e := l.order.Front(); e != nil; e = e.Next() {
		if en := e.Value.(*entry); now.Before(en.until) {
			k.Add(en.key, en.until)
		}
	}
}

func (l *List) kernelAdd(k netip.Prefix, until time.Time) {
	if b := l.kernel.Load(); b != nil {
		b.k.Add(k, until)
	}
}

func (l *List) kernelRemove(k netip.Prefix) {
	if b := l.kernel.Load(); b != nil {
		b.k.Remove(k)
	}
}
