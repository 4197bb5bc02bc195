package fastcgi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"

	"gantry/internal/supervise"
)

// A source hands out connections to a FastCGI server: either a pool of connections
// to one address (fastcgi = ADDR) or the supervised processes gantry spawned
// (fastcgi_command).
type source interface {
	// get returns a connection; fresh asks for a new one rather than an idle one (a
	// retry after a connection failed). check asks to verify that an idle one is still
	// open first: needed when the request could not be sent again, a wasted system
	// call otherwise, as a request that finds its connection closed is retried. Every
	// get that succeeds needs one put.
	get(ctx context.Context, fresh, check bool) (*conn, error)
	// put ends a request on c: kept for the next request when reusable, else closed.
	// outcome says whether the backend failed (died, spoke garbage) or timed out.
	put(c *conn, reusable bool, outcome supervise.Outcome)
	// shutdown waits for requests in flight (up to ctx), then closes everything.
	shutdown(ctx context.Context) error
}

// addrPool is a bounded pool of connections to one address. The bound matters more
// than usual: php-fpm and php-cgi pin a worker process to every kept-alive
// connection, so more connections than workers would sit in the listen queue until a
// timeout. Idle connections are closed after idleTimeout to free those workers for
// other clients of the same php-fpm pool.
type addrPool struct {
	network, addr string
	dialTimeout   time.Duration
	idleTimeout   time.Duration
	sem           chan struct{} // one token per connection that may be open

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

func newAddrPool(network, addr string, maxConns int, dialTimeout, idleTimeout time.Duration) *addrPool {
	p := &addrPool{network: network, addr: addr, dialTimeout: dialTimeout, idleTimeout: idleTimeout,
		sem: make(chan struct{}, maxConns), stop: make(chan struct{}), done: make(chan struct{})}
	for range maxConns {
		p.sem <- struct{}{}
	}
	go p.reap()
	return p
}

func (p *addrPool) String() string { return p.network + ":" + p.addr }

// parseAddress turns "unix:/path.sock" or "host:port" into a dial network and address.
func parseAddress(s string) (network, addr string, err error) {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if path == "" {
			return "", "", fmt.Errorf("fastcgi: empty unix socket path in %q", s)
		}
		return "unix", path, nil
	}
	if strings.HasPrefix(s, "/") {
		return "unix", s, nil
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		return "", "", fmt.Errorf("fastcgi: address %q: want unix:/path.sock or host:port: %w", s, err)
	}
	return "tcp", s, nil
}

var errClosed = errors.New("fastcgi: handler shut down")

func (p *addrPool) get(ctx context.Context, fresh, check bool) (*conn, error) {
	select {
	case <-p.sem:
	case <-ctx.Done():
		return nil, fmt.Errorf("fastcgi: waiting for a free connection to %s: %w", p, context.Cause(ctx))
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.sem <- struct{}{}
		return nil, errClosed
	}
	var c *conn
	if n := len(p.idle); n > 0 {
		c = p.idle[n-1]
		p.idle = p.idle[:n-1]
	}
	p.mu.Unlock()
	// The token covers one open connection, so an idle one that is not reused is
	// closed: kept open, it would pin a worker that the new connection then waits for.
	if c != nil {
		if !fresh && (!check || c.alive()) {
			return c, nil
		}
		c.nc.Close()
	}
	nc, err := dial(ctx, p.network, p.addr, p.dialTimeout)
	if err != nil {
		p.sem <- struct{}{}
		return nil, err
	}
	return newConn(nc, p.String()), nil
}

func dial(ctx context.Context, network, addr string, timeout time.Duration) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("fastcgi: dial %s:%s: %w", network, addr, err)
	}
	return nc, nil
}

func (p *addrPool) put(c *conn, reusable bool, _ supervise.Outcome) {
	p.mu.Lock()
	if reusable && !p.closed {
		c.idleSince = time.Now()
		p.idle = append(p.idle, c)
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
	p.sem <- struct{}{}
	if len(p.sem) == 0 {
		// The token went straight to a request waiting in get, which the runtime
		// would otherwise run only once this goroutine blocks, after it has written
		// its response to the client. Meanwhile the backend's worker sits idle on the
		// kept connection: let the waiter send its request first.
		runtime.Gosched()
	}
}

func (p *addrPool) reap() {
	defer close(p.done)
	t := time.NewTicker(max(p.idleTimeout/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.closeIdle(func(c *conn) bool { return now.Sub(c.idleSince) >= p.idleTimeout })
		}
	}
}

func (p *addrPool) closeIdle(match func(*conn) bool) {
	var stale []*conn
	p.mu.Lock()
	kept := p.idle[:0]
	for _, c := range p.idle {
		if match(c) {
			stale = append(stale, c)
		} else {
			kept = append(kept, c)
		}
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	p.mu.Unlock()
	for _, c := range stale {
		c.nc.Close()
	}
}

func (p *addrPool) shutdown(ctx context.Context) error {
	p.mu.Lock()
	already := p.closed
	p.closed = true
	p.mu.Unlock()
	if !already {
		close(p.stop)
		<-p.done
	}
	p.closeIdle(func(*conn) bool { return true })
	// Every token back means no request is in flight.
	need := cap(p.sem)
	for got := 0; got < need; got++ {
		select {
		case <-p.sem:
		case <-ctx.Done():
			for range got {
				p.sem <- struct{}{}
			}
			return fmt.Errorf("fastcgi: %s: waiting for requests in flight: %w", p, ctx.Err())
		}
	}
	for range need {
		p.sem <- struct{}{}
	}
	return nil
}
