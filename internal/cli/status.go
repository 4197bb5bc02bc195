package cli

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gantry/internal/server"
	"gantry/internal/systemd"
)

// statusEvery is how often the one-line status `systemctl status` shows is renewed.
const statusEvery = 10 * time.Second

// statusReporter renews the service manager's status line (request rate, workers)
// and pings its watchdog.
type statusReporter struct {
	srv  *server.Server
	mu   sync.Mutex // the signal loop and run both ask for a line
	last uint64
	at   time.Time
}

// line summarises the server since the previous line.
func (r *statusReporter) line() string {
	st := r.srv.Status()
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	rate := 0.0
	if d := now.Sub(r.at).Seconds(); d > 0 {
		rate = float64(st.RequestsTotal-r.last) / d
	}
	r.last, r.at = st.RequestsTotal, now
	workers := 0
	for _, p := range st.Pools {
		workers += len(p.Workers)
	}
	return fmt.Sprintf("%.1f req/s, %d worker(s), %d requests since start", rate, workers, st.RequestsTotal)
}

// run renews the status every statusEvery and pings the watchdog at the interval
// the manager asked for, until ctx ends. The ping comes from the goroutine that
// reads the server's state, so a server stuck on its own locks stops pinging.
func (r *statusReporter) run(ctx context.Context, n *systemd.Notifier, log *slog.Logger) {
	if !n.Enabled() {
		return
	}
	wd := n.WatchdogInterval()
	every := statusEvery
	if wd > 0 && wd < every {
		every = wd
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		states := []string{"STATUS=" + r.line()}
		if wd > 0 {
			states = append(states, "WATCHDOG=1")
		}
		if err := n.Notify(states...); err != nil {
			log.Warn("systemd notification", "err", err)
		}
	}
}
