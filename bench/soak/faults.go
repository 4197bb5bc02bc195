package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// faults strikes every interval: kills a WSGI worker or a php-cgi process with
// SIGKILL, reloads gantry (two valid configs in turn, an invalid one between),
// makes a WSGI request hang past its timeout, or fills the stuck upstream's
// accept queue through the proxy.
//
// Before the first fault it measures the load's rate with no faults (after a
// minute's warm-up) for baseline; then every quietEvery it pauses for a minute
// and measures the rate again, so that what the faults leave behind (a slower
// pool, a leak that costs CPU) shows against the same mix untouched.
func faults(ctx context.Context, g *gantry, t *tally, gate *sync.RWMutex, every, baseline, quietEvery time.Duration, start time.Time) {
	base := fmt.Sprintf("http://127.0.0.1:%d", g.site.port)
	c := client(60 * time.Second)
	cycle := []string{"B", "wrong", "A", "wrong"}
	next := 0
	var bg sync.WaitGroup
	defer bg.Wait()
	if baseline > 0 {
		if !sleepCtx(ctx, time.Minute) {
			return
		}
		r, ok := t.measure(ctx, start, baseline, "no faults yet")
		if !ok {
			return
		}
		t.mu.Lock()
		t.baseline = r
		t.mu.Unlock()
	}
	lastQuiet := time.Now()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if quietEvery > 0 && baseline > 0 && time.Since(lastQuiet) >= quietEvery {
			if !quietWindow(ctx, g, t, gate, &bg, start) {
				return
			}
			lastQuiet = time.Now()
			continue
		}
		gate.RLock()
		switch rand.IntN(5) {
		case 0:
			kill(g, t, "wsgi")
		case 1:
			kill(g, t, "fastcgi")
		case 2:
			name := cycle[next%len(cycle)]
			next++
			reload(g, t, c, base, name)
		case 3:
			t.fault("hang a WSGI request past its timeout")
			bg.Add(1)
			go func() {
				defer bg.Done()
				hang(c, base, t)
			}()
		case 4:
			t.fault("fill the upstream's accept queue")
			bg.Add(1)
			go func() {
				defer bg.Done()
				stuck(c, base, t)
			}()
		}
		gate.RUnlock()
	}
}

func kill(g *gantry, t *tally, kind string) {
	pids := g.workers(kind)
	if len(pids) == 0 {
		return
	}
	t.fault("SIGKILL a " + kind + " worker")
	pid := pids[rand.IntN(len(pids))]
	i := t.killed(kind)
	syscall.Kill(pid, syscall.SIGKILL)
	// Gone means reaped. A zombie leader is not enough: the other threads of a
	// Python worker may still be exiting, its sockets open, and a request
	// written to one then was in flight on the killed worker.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			break
		}
	}
	t.died(i)
}

func reload(g *gantry, t *tally, c *http.Client, base, name string) {
	t.fault("SIGHUP with config " + name)
	loaded, err := g.reload(name)
	switch {
	case err != nil:
		t.add("reload", defect, fmt.Sprintf("config %s: %v", name, err))
	case name == "wrong" && loaded:
		t.add("reload", defect, "the invalid config was accepted")
	case name == "wrong":
		t.add("reload", expected, "invalid config refused, the old one kept")
	case !loaded:
		t.add("reload", defect, "valid config "+name+" refused")
	default:
		resp, err := c.Get(base + "/1k.bin")
		if err != nil {
			t.add("reload", defect, err.Error())
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("X-Config"); got != name {
			t.add("reload", defect, fmt.Sprintf("config %s loaded, responses say %q", name, got))
			return
		}
		t.add("reload", ok, "")
	}
}

// hang asks the WSGI app to sleep 5s under a 3s timeout: gantry must answer 504
// and replace the worker.
func hang(c *http.Client, base string, t *tally) {
	start := time.Now()
	resp, err := c.Get(base + "/app/hang?5")
	if err != nil {
		t.add("hung backend", defect, err.Error())
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case resp.StatusCode == 504:
		t.add("hung backend", expected, "504 after the route's timeout")
	case resp.StatusCode == 502 && t.killedDuring("wsgi", start, time.Now()):
		t.add("hung backend", expected, "502: the fault loop killed its worker first")
	default:
		t.add("hung backend", defect, resp.Status)
	}
}

// stuck sends requests through the proxy to an upstream whose accept queue is
// full: each must end in 502 or 504 within the route's timeout, not hang.
func stuck(c *http.Client, base string, t *tally) {
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			resp, err := c.Get(base + "/stuck/x")
			if err != nil {
				t.add("stuck upstream", defect, err.Error())
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			took := time.Since(start)
			switch {
			case (resp.StatusCode == 502 || resp.StatusCode == 504) && took < 10*time.Second:
				t.add("stuck upstream", expected, fmt.Sprint(resp.StatusCode))
			default:
				t.add("stuck upstream", defect, fmt.Sprintf("%s after %s", resp.Status, took.Round(time.Millisecond)))
			}
		}()
	}
	wg.Wait()
}

// quietMeasure is how long a quiet window measures: long enough that the random
// body sizes (1 KB-5 MB) average out as they do over the baseline.
const quietMeasure = 2 * time.Minute

// quietWindow lets the faults' after-effects settle (hung requests answered,
// config A back) for 10 s, then measures quietMeasure of the load with no fault.
func quietWindow(ctx context.Context, g *gantry, t *tally, gate *sync.RWMutex, bg *sync.WaitGroup, start time.Time) bool {
	bg.Wait()
	gate.RLock()
	if g.current != "A" {
		if ok, err := g.reload("A"); !ok || err != nil {
			t.note("quiet window: reload to config A: ok=%v err=%v", ok, err)
		}
	}
	gate.RUnlock()
	if !sleepCtx(ctx, 10*time.Second) {
		return false
	}
	r, ok := t.measure(ctx, start, quietMeasure, "quiet window")
	if !ok {
		return false
	}
	t.mu.Lock()
	t.quiet = append(t.quiet, r)
	t.mu.Unlock()
	return true
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
