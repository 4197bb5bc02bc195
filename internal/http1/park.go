package http1

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// defaultReapEvery is how often the parker looks for parked connections closed
// under it (a ban closes its source's connections): their memory and their
// place in Shutdown's count are given back within it. A parker that could not
// start is tried again after it too.
const defaultReapEvery = 10 * time.Second

// parker holds keep-alive connections that have waited for their next request
// longer than Server.ParkAfter, without a goroutine or a buffer: their sockets
// are in an epoll instance of its own, one-shot and level-triggered, so bytes
// that came before a socket was added are seen at once. One goroutine waits on
// it, starts a connection's loop again when its socket is readable, and closes
// the connections whose idle timeout has passed. A server's connections share
// one idle timeout, so the order they are parked in is their deadlines' order:
// a list, not a timer each.
//
// Sockets stay registered in Go's poller too, which epoll allows; the runtime's
// edge-triggered event for a parked socket only marks it readable for the next
// Read. A socket closed under the parker leaves its epoll set with it (the
// kernel drops a closed file's registrations), so an event can never name a
// descriptor reused since: events carry the connection's id, not its
// descriptor, and the parker touches a descriptor only through RawConn.Control.
type parker struct {
	s    *Server
	ep   int // epoll
	wake int // eventfd: the list's first deadline changed, or stop

	mu sync.Mutex
	// slots holds the parked connections by the low half of their id (slot+1);
	// the high half is a count that tells a reused slot from its last holder.
	slots   []*conn
	free    []uint32
	parked  int
	seq     uint32
	head    *conn // first to expire
	tail    *conn
	stopped bool
	woken   []*conn
	expired []*conn
	reaped  time.Time
	done    chan struct{}
}

// parkLink is a connection's place in the parker.
type parkLink struct {
	id         uint64 // 0 when not parked
	prev, next *conn
	registered bool  // in the parker's epoll set (perhaps disarmed)
	released   bool  // the parker holds fd, a duplicate, and c no net.Conn
	fd         int32 // while released
}

// wakeID is the eventfd's id in events; connections' ids start at 1.
const wakeID = 0

func newParker(s *Server) (*parker, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(ep)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setID(&ev, wakeID)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(ep)
		unix.Close(wake)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	p := &parker{s: s, ep: ep, wake: wake, reaped: time.Now(), done: make(chan struct{})}
	go p.run()
	return p, nil
}

func setID(ev *unix.EpollEvent, id uint64) {
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
}

func idOf(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// park takes c, idle since it found nothing to read, until its next request or
// until (zero: no timeout). It reports false, c left idle for its goroutine to
// go on waiting or to close, when the parker is stopping or c's socket is gone.
func (p *parker) park(c *conn, until time.Time) bool {
	arm := p.arm
	if !p.s.KeepParkedConns && c.tls == nil {
		arm = p.release
		// Shutdown reads a connection's socket under s.mu; release changes it.
		p.s.mu.Lock()
		defer p.s.mu.Unlock()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// The state changes under p.mu: Shutdown, seeing stateParked, finds c in the
	// list when it removes it.
	if p.stopped || !c.state.CompareAndSwap(stateIdle, stateParked) {
		return false
	}
	var slot uint32
	if n := len(p.free); n > 0 {
		slot, p.free = p.free[n-1], p.free[:n-1]
	} else {
		slot = uint32(len(p.slots))
		p.slots = append(p.slots, nil)
	}
	p.slots[slot] = c
	p.parked++
	p.seq++
	c.park.id = uint64(p.seq)<<32 | uint64(slot+1)
	c.idleUntil = mono(until)
	c.park.prev, c.park.next = p.tail, nil
	if p.tail != nil {
		p.tail.park.next = c
	} else {
		p.head = c
	}
	p.tail = c
	if err := arm(c); err != nil {
		p.unlink(c)
		c.state.CompareAndSwap(stateParked, stateIdle)
		return false
	}
	if p.head == c {
		p.signal() // the parker may be waiting with no timeout
	}
	return true
}

// arm adds c's socket to the epoll set, or re-arms it: one event, then it is
// disarmed until the next park.
func (p *parker) arm(c *conn) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT}
	setID(&ev, c.park.id)
	var err error
	cerr := c.raw.Control(func(fd uintptr) {
		op := unix.EPOLL_CTL_MOD
		if !c.park.registered {
			op = unix.EPOLL_CTL_ADD
		}
		err = unix.EpollCtl(p.ep, op, int(fd), &ev)
		switch {
		case errors.Is(err, unix.EEXIST):
			err = unix.EpollCtl(p.ep, unix.EPOLL_CTL_MOD, int(fd), &ev)
		case errors.Is(err, unix.ENOENT):
			err = unix.EpollCtl(p.ep, unix.EPOLL_CTL_ADD, int(fd), &ev)
		}
		c.park.registered = err == nil
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// lookup is the connection parked as id, nil when it has left; p.mu is held.
func (p *parker) lookup(id uint64) *conn {
	slot := uint64(uint32(id)) - 1
	if slot >= uint64(len(p.slots)) {
		return nil
	}
	if c := p.slots[slot]; c != nil && c.park.id == id {
		return c
	}
	return nil
}

// unlink takes c out of the list; p.mu is held. Doing it twice is harmless.
func (p *parker) unlink(c *conn) {
	if c.park.id == 0 {
		return
	}
	slot := uint32(c.park.id) - 1
	p.slots[slot] = nil
	p.free = append(p.free, slot)
	p.parked--
	c.park.id = 0
	if c.park.prev != nil {
		c.park.prev.park.next = c.park.next
	} else {
		p.head = c.park.next
	}
	if c.park.next != nil {
		c.park.next.park.prev = c.park.prev
	} else {
		p.tail = c.park.prev
	}
	c.park.prev, c.park.next = nil, nil
}

// remove takes out c, which its caller has moved to stateClosed.
func (p *parker) remove(c *conn) {
	p.mu.Lock()
	p.unlink(c)
	p.mu.Unlock()
}

// count is the number of parked connections.
func (p *parker) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.parked
}

// signal wakes the goroutine; p.mu is held and p.stopped was false, so the
// eventfd is still open.
func (p *parker) signal() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(p.wake, one[:])
}

// stop ends the parker's goroutine, and with it the epoll set; connections
// still parked are Shutdown's to close.
func (p *parker) stop() {
	p.mu.Lock()
	if !p.stopped {
		// Under p.mu: the goroutine sees stopped, and closes the eventfd,
		// only after this write.
		p.stopped = true
		p.signal()
	}
	p.mu.Unlock()
	<-p.done
}

func (p *parker) run() {
	defer close(p.done)
	defer unix.Close(p.wake)
	defer unix.Close(p.ep)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.ep, events, p.timeout(time.Now()))
		if err != nil && !errors.Is(err, unix.EINTR) {
			// Nothing here can fail on a valid epoll descriptor; if it does, the
			// parked connections are closed as at their timeout, and connections
			// wait with their goroutine from now on.
			if p.s.Logger != nil {
				p.s.Logger.Error("http1: parker stopped: epoll_wait failed", "err", err)
			}
			p.mu.Lock()
			p.stopped = true
			for c := p.head; c != nil; c = c.park.next {
				if c.state.CompareAndSwap(stateParked, stateClosed) {
					p.expired = append(p.expired, c)
				}
			}
			for p.head != nil {
				p.unlink(p.head)
			}
			p.mu.Unlock()
			p.closeExpired()
			return
		}
		now := time.Now()
		p.mu.Lock()
		for i := range n {
			id := idOf(&events[i])
			if id == wakeID {
				var buf [8]byte
				unix.Read(p.wake, buf[:])
				continue
			}
			c := p.lookup(id)
			if c == nil {
				continue // removed by Shutdown meanwhile
			}
			p.unlink(c)
			if c.park.released {
				// Before the socket it names closes: attach duplicates it.
				unix.EpollCtl(p.ep, unix.EPOLL_CTL_DEL, int(c.park.fd), nil)
			}
			if c.state.CompareAndSwap(stateParked, stateActive) {
				p.woken = append(p.woken, c)
			}
		}
		p.expire(now)
		if now.Sub(p.reaped) >= p.s.reapEvery() {
			p.reap()
			p.reaped = now
		}
		stopped := p.stopped
		p.mu.Unlock()
		for i, c := range p.woken {
			go c.serve(true)
			p.woken[i] = nil
		}
		p.woken = p.woken[:0]
		p.closeExpired()
		if stopped {
			return
		}
	}
}

// timeout is epoll_wait's: until the first deadline or the next reap, none when
// nothing is parked.
func (p *parker) timeout(now time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.head == nil {
		return -1
	}
	next := p.reaped.Add(p.s.reapEvery())
	if u := fromMono(p.head.idleUntil); !u.IsZero() && u.Before(next) {
		next = u
	}
	d := next.Sub(now)
	if d <= 0 {
		return 0
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// expire takes the connections whose idle timeout has passed; p.mu is held.
func (p *parker) expire(now time.Time) {
	for c := p.head; c != nil && c.idleUntil != 0 && !fromMono(c.idleUntil).After(now); c = p.head {
		p.unlink(c)
		if c.state.CompareAndSwap(stateParked, stateClosed) {
			p.expired = append(p.expired, c)
		}
	}
}

// reap takes the connections closed under the parker; p.mu is held. A
// released connection has nothing another can close.
func (p *parker) reap() {
	for c := p.head; c != nil; {
		next := c.park.next
		if !c.park.released && c.raw.Control(noop) != nil {
			p.unlink(c)
			if c.state.CompareAndSwap(stateParked, stateClosed) {
				p.expired = append(p.expired, c)
			}
		}
		c = next
	}
}

func noop(uintptr) {}

// closeExpired closes what expire and reap took, without p.mu: the server's
// lock comes first.
func (p *parker) closeExpired() {
	for i, c := range p.expired {
		c.closeParked()
		c.s.track(c, false)
		p.expired[i] = nil
	}
	p.expired = p.expired[:0]
}
