package dashboard

import (
	"fmt"
	"sort"
	"time"

	"gantry/internal/server"
	"gantry/internal/telescope"
	"gantry/internal/telescope/httpsensor"
)

type alertInput struct {
	requests, errors5xx uint64
	poll                bool // pools were read this tick
	pools               []server.PoolStatus
	exploits            uint64 // running total of exploit requests
	sensor              *httpsensor.Sensor
	report              *telescope.Report
}

type point struct {
	at time.Time
	n  uint64
}

// alerter keeps the short histories alerts are computed from.
type alerter struct {
	reqs, errs []point            // per tick, last burst5xxWindow
	restarts   map[string][]point // pool -> running restart total, last crashWindow
	exploits   []point            // running totals, last attackWindow
	since      map[string]time.Time
}

func newAlerter() *alerter {
	return &alerter{restarts: map[string][]point{}, since: map[string]time.Time{}}
}

// trim drops points older than d before now, keeping the newest older one as the
// baseline for a running total.
func trim(ps []point, now time.Time, d time.Duration) []point {
	i := 0
	for i+1 < len(ps) && now.Sub(ps[i+1].at) >= d {
		i++
	}
	return ps[i:]
}

func sum(ps []point) uint64 {
	var n uint64
	for _, p := range ps {
		n += p.n
	}
	return n
}

func (a *alerter) update(now time.Time, in alertInput) []Alert {
	out := []Alert{}
	next := map[string]time.Time{} // the alerts on now, and since when
	add := func(key, kind, msg string) {
		s, ok := a.since[key]
		if !ok {
			s = now
		}
		next[key] = s
		out = append(out, Alert{Kind: kind, Message: msg, Since: s})
	}

	a.reqs = trim(append(a.reqs, point{now, in.requests}), now, burst5xxWindow)
	a.errs = trim(append(a.errs, point{now, in.errors5xx}), now, burst5xxWindow)
	if e, r := sum(a.errs), sum(a.reqs); e >= burst5xx && e*10 >= r {
		add("5xx", "5xx_burst", fmt.Sprintf("%d of %d requests answered 5xx in the last minute", e, r))
	}

	if in.poll {
		seen := map[string]bool{}
		for _, p := range in.pools {
			key := p.Site + " " + p.Route
			seen[key] = true
			var total uint64
			for _, w := range p.Workers {
				total += uint64(w.Restarts)
			}
			a.restarts[key] = trim(append(a.restarts[key], point{now, total}), now, crashWindow)
		}
		for k := range a.restarts {
			if !seen[k] {
				delete(a.restarts, k)
			}
		}
	}
	keys := make([]string, 0, len(a.restarts))
	for k := range a.restarts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ps := a.restarts[k]
		if d := ps[len(ps)-1].n - ps[0].n; len(ps) > 1 && d >= crashRestarts {
			add("crash "+k, "crash_loop", fmt.Sprintf("workers of %s restarted %d times in the last %s: crash loop?", k, d, crashWindow))
		}
	}

	if in.sensor != nil {
		a.exploits = trim(append(a.exploits, point{now, in.exploits}), now, attackWindow)
		if d := a.exploits[len(a.exploits)-1].n - a.exploits[0].n; len(a.exploits) > 1 && d > 0 {
			msg := fmt.Sprintf("%d exploit attempts in the last %s", d, attackWindow)
			if e, ok := in.sensor.Latest(httpsensor.Exploit); ok {
				msg += fmt.Sprintf("; latest from %s: %s (%s)", e.Source, e.Target, e.Rule)
			}
			add("exploit", "attack", msg)
		}
	}
	if in.report != nil {
		end := in.report.End
		if end.IsZero() {
			end = now
		}
		for i, at := range in.report.Attacks {
			if i == 5 {
				break
			}
			if end.Sub(at.End) <= attackWindow {
				add("dos "+at.Victim+at.Protocol, "attack", fmt.Sprintf("DoS attack on %s (%s): %d backscatter packets, ~%.0f packets/s Internet-wide",
					at.Victim, at.Protocol, at.Packets, at.EstPPS))
			}
		}
	}

	a.since = next
	return out
}
