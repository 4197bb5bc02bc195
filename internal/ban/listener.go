package ban

import (
	"gantry/internal/netconn"
	"net"
	"net/netip"
	"sync"

	"gantry/internal/clientnet"
)

// Listener returns ln with banned sources' connections closed as they are
// accepted, before a byte is read, and every other connection tracked so that a
// ban closes it. It works on any listener; the connections it returns keep the
// optional methods net/http and the fast path look for (ReadFrom for sendfile,
// CloseWrite, NetConn).
func (l *List) Listener(ln net.Listener) net.Listener { return &listener{Listener: ln, l: l} }

type listener struct {
	net.Listener
	l *List
}

func (gl *listener) Accept() (net.Conn, error) {
	for {
		c, err := gl.Listener.Accept()
		if err != nil {
			return nil, err
		}
		a := AddrOf(c.RemoteAddr())
		k := clientnet.Host(a)
		tc := &conn{Watched: netconn.Watched{Conn: c}, l: gl.l, key: k}
		// tracked before the check: a ban between the two then finds it to close
		gl.l.track(k, tc)
		if gl.l.refuse(a) {
			// a reset, not a FIN: nothing lingers for a source that is not served
			if sl, ok := c.(interface{ SetLinger(int) error }); ok {
				sl.SetLinger(0)
			}
			tc.Close()
			continue
		}
		return tc, nil
	}
}

// Admit is the accept check for transports without a net.Listener (QUIC): it
// reports whether a connection from remote may proceed, counting a refusal.
func (l *List) Admit(remote net.Addr) bool { return !l.refuse(AddrOf(remote)) }

// Track registers an open connection of remote's source, which a ban of the
// source closes by calling close; the returned func unregisters it. A source
// banned since Admit (a QUIC handshake outlasts a ban) is closed at once.
func (l *List) Track(remote net.Addr, close func()) (untrack func()) {
	a := AddrOf(remote)
	k := clientnet.Host(a)
	c := &funcCloser{close}
	l.track(k, c)
	untrack = func() { l.untrack(k, c) }
	if l.Banned(a) {
		untrack()
		close()
	}
	return untrack
}

type funcCloser struct{ f func() }

func (c *funcCloser) Close() error { c.f(); return nil }

func (l *List) track(k netip.Prefix, c closer) {
	l.omu.Lock()
	set := l.open[k]
	if set == nil {
		set = map[closer]struct{}{}
		l.open[k] = set
	}
	set[c] = struct{}{}
	l.omu.Unlock()
}

func (l *List) untrack(k netip.Prefix, c closer) {
	l.omu.Lock()
	if set := l.open[k]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(l.open, k)
		}
	}
	l.omu.Unlock()
}

// closeOpen closes every open connection of k (keep-alive connections of a
// source just banned), or of the /64s inside the /48 k.
func (l *List) closeOpen(k netip.Prefix) {
	var sets []map[closer]struct{}
	l.omu.Lock()
	if isWide(k) {
		// the open connections are kept by /64: every one inside the /48
		for u, set := range l.open {
			if k.Overlaps(u) {
				sets = append(sets, set)
				delete(l.open, u)
			}
		}
	} else if set := l.open[k]; set != nil {
		sets = append(sets, set)
		delete(l.open, k)
	}
	l.omu.Unlock()
	for _, set := range sets {
		for c := range set {
			c.Close()
		}
	}
}

// OpenConns returns the number of tracked open connections.
func (l *List) OpenConns() int {
	l.omu.Lock()
	defer l.omu.Unlock()
	n := 0
	for _, set := range l.open {
		n += len(set)
	}
	return n
}

// AddrOf is the IP address of a net.Addr, IPv4-mapped IPv6 as IPv4; the zero
// Addr when it has none.
func AddrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// conn is an accepted connection, tracked until it closes.
type conn struct {
	netconn.Watched
	l    *List
	key  netip.Prefix
	once sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() { c.l.untrack(c.key, c) })
	return c.Conn.Close()
}
