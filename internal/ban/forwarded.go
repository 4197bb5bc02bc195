package ban

import (
	"net/netip"

	"gantry/internal/clientnet"
)

// trusted reports whether a is one of the proxies in front of gantry, whose
// X-Forwarded-For is read.
func (l *List) trusted(a netip.Addr) bool {
	for _, p := range l.opts.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Client is the client of a request from remote (the TCP peer, "host:port")
// carrying the X-Forwarded-For values xff: the address a trusted proxy names
// (clientnet.Forwarded), else the peer's; the zero Addr when remote has none.
func (l *List) Client(remote string, xff []string) netip.Addr {
	return clientnet.Forwarded(clientnet.Remote(remote), xff, l.trusted)
}

// Forbidden reports whether a request from remote with the X-Forwarded-For
// values xff is one a trusted proxy forwards for a banned client, which the
// caller answers 403 on the proxy's connection, left open: the proxy is many
// clients and is never refused at accept. It counts the refusal, and logs the
// first of each ban (the client sends as many requests as it likes). A request
// from a banned source itself never gets here: its connection was refused at
// accept.
func (l *List) Forbidden(remote string, xff []string) bool {
	if len(xff) == 0 || len(l.opts.Trusted) == 0 || l.held.Load() == 0 {
		return false
	}
	c := l.Client(remote, xff)
	e := l.banOf(c)
	if e == nil {
		return false
	}
	e.refused.Add(1)
	l.refusedReqs.Add(1)
	if e.told.Swap(true) {
		return true
	}
	l.mu.RLock()
	key, rule, until := e.key, e.rule, e.until
	l.mu.RUnlock()
	l.log.Info("request refused: forwarded for a banned client", "client", c.String(), "ban", key.String(),
		"rule", rule, "until", until, "proxy", remote, "note", "its next ones are counted in refused_requests, not logged")
	return true
}
