package telescope

import (
	"sync"
)

// Live is a running packet capture on one interface, feeding a Classifier. Snapshot
// may be called from any goroutine while it runs.
type Live struct {
	mu    sync.Mutex
	c     *Classifier
	drops uint64 // packets the kernel dropped because the reader fell behind

	stop      func()
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Snapshot returns the report so far: the same structure `analyze --format json`
// prints, with running class totals that a dashboard turns into packets per second.
func (l *Live) Snapshot() Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.c.Report()
	r.KernelDrops = l.drops
	return r
}

// Close stops the capture and releases the socket. It is safe to call more than once.
func (l *Live) Close() error {
	l.closeOnce.Do(func() {
		l.stop()
		<-l.done
	})
	return l.closeErr
}
