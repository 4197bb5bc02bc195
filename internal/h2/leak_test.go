package h2

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"gantry/internal/peertest"
)

// Clients that leave mid-request leave nothing behind: no goroutine but the
// pool's idle workers (kept a while for the next request), whatever the
// handler was waiting for (the body, window for its answer, an inline answer
// waiting for window).
func TestNoLeakAfterClientsLeave(t *testing.T) {
	entered := make(chan struct{}, 16)
	big := strings.Repeat("x", 1<<20)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		switch r.URL.Path {
		case "/body":
			io.ReadAll(r.Body)
		case "/big":
			io.WriteString(w, big)
		}
	})
	inline := func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/inline" {
			return false
		}
		io.WriteString(w, big[:32<<10])
		return true
	}
	idle := func() int {
		workers.mu.Lock()
		defer workers.mu.Unlock()
		return len(workers.idle)
	}
	// Settle the test's own goroutines (the listener) before the baseline.
	ts := startServer(t, &Server{Handler: h, Inline: inline})
	warm := ts.raw(t)
	warm.get(1, "/", true)
	warm.until("a response", func(f http2.Frame) bool { _, ok := f.(*http2.MetaHeadersFrame); return ok })
	<-entered
	warm.tc.Close()
	peertest.WaitFor(t, 10*time.Second, "the warm-up connection to end", func() bool {
		ts.s.mu.Lock()
		defer ts.s.mu.Unlock()
		return len(ts.s.conns) == 0
	})
	base := runtime.NumGoroutine() - idle()

	for round := range 3 {
		var conns []*rawConn
		rc := ts.raw(t)
		rc.get(1, "/body", false)
		rc.fr.WriteData(1, false, []byte("part"))
		conns = append(conns, rc)
		rc = ts.raw(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		rc.get(1, "/big", true)
		conns = append(conns, rc)
		for range 2 {
			<-entered
		}
		rc = ts.raw(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		for id := uint32(1); id < 8; id += 2 {
			rc.get(id, "/inline", true)
		}
		rc.until("an inline answer's head", func(f http2.Frame) bool { _, ok := f.(*http2.MetaHeadersFrame); return ok })
		conns = append(conns, rc)
		for _, rc := range conns {
			rc.tc.Close()
		}
		peertest.WaitFor(t, 10*time.Second, fmt.Sprintf("round %d: goroutines back to %d and the idle workers", round, base), func() bool {
			return runtime.NumGoroutine()-idle() <= base
		})
	}
}
