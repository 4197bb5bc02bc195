package ban

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"gantry/internal/telescope"
)

// An IPv6 host is given a /64 and its site a /48, so a client that rotates
// through the /64s of its /48 would get a fresh address for every ban. When
// Escalate /64s inside one /48 are banned within Window, the /48 is banned.

// wideBits is the prefix a rotating IPv6 client holds: a site's /48.
const wideBits = 48

// wideOf is the /48 a /64 unit belongs to.
func wideOf(k netip.Prefix) netip.Prefix { return netip.PrefixFrom(k.Addr(), wideBits).Masked() }

// nat64 are the prefixes IPv4 clients reach an IPv6 node through (RFC 6052,
// RFC 8215): a /48 over one of them is every such client, never one site.
var nat64 = []netip.Prefix{netip.MustParsePrefix("64:ff9b::/96"), netip.MustParsePrefix("64:ff9b:1::/48")}

// wideAllowed reports whether the /48 w may be banned: it holds no NAT64 prefix.
func wideAllowed(w netip.Prefix) bool {
	for _, p := range nat64 {
		if p.Overlaps(w) {
			return false
		}
	}
	return true
}

// isWide reports whether k is a /48 ban rather than a client unit.
func isWide(k netip.Prefix) bool { return k.Addr().Is6() && k.Bits() == wideBits }

// wideHits are the /64s of one /48 banned within the window, the oldest first.
type wideHits struct {
	units []netip.Prefix
	at    []time.Time
}

func (w *wideHits) last() time.Time { return w.at[len(w.at)-1] }

// escalate records that the /64 k was just banned, and bans its /48 when
// Escalate distinct /64s of it were banned within Window.
func (l *List) escalate(k netip.Prefix, now time.Time) {
	n := l.opts.Escalate
	if n <= 0 || !k.Addr().Is6() || k.Bits() != 64 {
		return
	}
	wk := wideOf(k)
	if !wideAllowed(wk) {
		return // NAT64's IPv4 clients inside: only /64s are banned
	}
	if l.never(wk) {
		return // the allow list or a trusted proxy inside the /48: only /64s are banned
	}
	l.cmu.Lock()
	w := l.wide[wk]
	if w == nil {
		if len(l.wide) >= l.opts.MaxCounters {
			if telescope.EvictSampled(l.wide, (*wideHits).last) {
				l.cevicted++
			}
		}
		w = &wideHits{}
		l.wide[wk] = w
	}
	// forget what left the window, and k's own earlier ban (a /64 counts once)
	units, at := w.units[:0], w.at[:0]
	for i, u := range w.units {
		if now.Sub(w.at[i]) <= l.opts.Window && u != k {
			units, at = append(units, u), append(at, w.at[i])
		}
	}
	w.units, w.at = append(units, k), append(at, now)
	var hit []netip.Prefix
	if len(w.units) >= n {
		hit = w.units
		delete(l.wide, wk)
	}
	l.cmu.Unlock()
	if hit == nil {
		return
	}
	names := make([]string, len(hit))
	for i, u := range hit {
		names[i] = u.String()
	}
	l.ban(wk, Escalated, fmt.Sprintf("%d /64s of the /48 banned within %s: %s", len(hit), l.opts.Window, strings.Join(names, " ")), 0, now)
}
