package h2

import (
	"sync"
	"time"
)

// workerIdle is how long a handler goroutine waits for its next request before
// it exits: a burst's goroutines are not kept forever.
const workerIdle = 30 * time.Second

// workers runs handlers on reused goroutines: a goroutine's stack, once grown
// by a handler, serves the next request without growing again.
var workers workerPool

type workerPool struct {
	mu   sync.Mutex
	idle []*worker
}

type worker struct {
	work chan func()
}

// run runs f on an idle worker, or a new one.
func (p *workerPool) run(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.work <- f
		return
	}
	p.mu.Unlock()
	w := &worker{work: make(chan func(), 1)}
	go w.loop(p, f)
}

func (w *worker) loop(p *workerPool, f func()) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		f()
		f = nil
		p.mu.Lock()
		p.idle = append(p.idle, w)
		p.mu.Unlock()
		t.Reset(workerIdle)
		select {
		case f = <-w.work:
			continue
		case <-t.C:
		}
		p.mu.Lock()
		for i, x := range p.idle {
			if x == w {
				p.idle = append(p.idle[:i], p.idle[i+1:]...)
				p.mu.Unlock()
				return
			}
		}
		p.mu.Unlock()
		// run took it after the timer fired: its work is on the way.
		f = <-w.work
	}
}
