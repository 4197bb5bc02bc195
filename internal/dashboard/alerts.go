package dashboard

import (
	"fmt"
	"time"

	"gantry/internal/certs"
	"gantry/internal/server"
	"gantry/internal/telescope"
	"gantry/internal/telescope/httpsensor"
)

// Alert is a condition the dashboard shows at the top of every tab. ID is the
// same for as long as the condition lasts; together with Since it names one
// occurrence, which is what a person dismisses: the banner comes back only when
// the condition ends and starts again.
type Alert struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"` // crash_loop, 5xx_burst, attack, certificate, saturated
	Message string    `json:"message"`
	Detail  string    `json:"detail,omitempty"` // a line quoted as is: the worker's last stderr line, the error
	Since   time.Time `json:"since"`
	// Pool is "site route" of the worker pool the alert is about, for the link
	// to its rows on the dashboard.
	Pool string `json:"pool,omitempty"`
}

// Alert thresholds.
const (
	crashCount     = 3               // unexpected worker exits of one pool ...
	crashWindow    = 5 * time.Minute // ... within this long
	burst5xx       = 10              // 5xx answers ...
	burst5xxWindow = time.Minute     // ... within this long, and at least 10% of requests
	attackWindow   = 5 * time.Minute // exploit attempts or DoS attacks seen this recently
	saturatedFor   = 5 * time.Second // requests waiting for a worker this long
)

type alertInput struct {
	requests, errors5xx uint64
	status              *server.Status // pools and certificates, when they were read this tick
	exploits            uint64         // running total of exploit requests
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
	crashes    map[string][]point // pool -> running crash total, last crashWindow
	exploits   []point            // running totals, last attackWindow
	since      map[string]time.Time
	status     *server.Status // the latest read
}

func newAlerter() *alerter {
	return &alerter{crashes: map[string][]point{}, since: map[string]time.Time{}}
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

// growth is how much a running total rose over ps.
func growth(ps []point) uint64 {
	if len(ps) < 2 || ps[len(ps)-1].n < ps[0].n {
		return 0
	}
	return ps[len(ps)-1].n - ps[0].n
}

func (a *alerter) update(now time.Time, in alertInput) []Alert {
	out := []Alert{}
	next := map[string]time.Time{} // the alerts on now, and since when
	add := func(al Alert) {
		s, ok := a.since[al.ID]
		if !ok {
			s = now
		}
		next[al.ID] = s
		al.Since = s
		out = append(out, al)
	}

	a.reqs = trim(append(a.reqs, point{now, in.requests}), now, burst5xxWindow)
	a.errs = trim(append(a.errs, point{now, in.errors5xx}), now, burst5xxWindow)
	if e, r := sum(a.errs), sum(a.reqs); e >= burst5xx && e*10 >= r {
		add(Alert{ID: "5xx", Kind: "5xx_burst",
			Message: fmt.Sprintf("%d of %d requests answered 5xx in the last %s", e, r, humanDuration(burst5xxWindow))})
	}

	if in.status != nil {
		a.status = in.status
		seen := map[string]bool{}
		for _, p := range in.status.Pools {
			key := p.Site + " " + p.Route
			seen[key] = true
			ps := a.crashes[key]
			if n := len(ps); n > 0 && uint64(p.Crashes) < ps[n-1].n {
				ps = nil // a new pool (its options changed on reload): start over
			}
			a.crashes[key] = trim(append(ps, point{now, uint64(p.Crashes)}), now, crashWindow)
		}
		for k := range a.crashes {
			if !seen[k] {
				delete(a.crashes, k)
			}
		}
	}
	if st := a.status; st != nil {
		for _, p := range st.Pools {
			a.poolAlerts(now, p, add)
		}
		for _, c := range st.Certificates {
			if c.LastError != "" {
				add(certAlert(now, c))
			}
		}
	}

	if in.sensor != nil {
		a.exploits = trim(append(a.exploits, point{now, in.exploits}), now, attackWindow)
		if d := growth(a.exploits); d > 0 {
			msg := fmt.Sprintf("%d exploit attempts in the last %s", d, humanDuration(attackWindow))
			if e, ok := in.sensor.Latest(httpsensor.Exploit); ok {
				msg += fmt.Sprintf("; latest from %s: %s (%s)", e.Source, e.Target, e.Rule)
			}
			add(Alert{ID: "exploit", Kind: "attack", Message: msg})
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
				add(Alert{ID: "dos " + at.Victim + " " + at.Protocol, Kind: "attack",
					Message: fmt.Sprintf("DoS attack on %s (%s): %d backscatter packets, ~%.0f packets/s Internet-wide",
						at.Victim, at.Protocol, at.Packets, at.EstPPS)})
			}
		}
	}

	a.since = next
	return out
}

// poolAlerts raises a pool's crash loop and saturation.
func (a *alerter) poolAlerts(now time.Time, p server.PoolStatus, add func(Alert)) {
	key := p.Site + " " + p.Route
	where := p.Route
	if p.Site != "default" {
		where = fmt.Sprintf("%s (site %s)", p.Route, p.Site)
	}
	if d := growth(a.crashes[key]); d >= crashCount && p.LastCrash != nil {
		last := fmt.Sprintf("the last one (pid %d) ended with %s", p.LastCrash.PID, p.LastCrash.Status)
		if p.LastCrash.PID == 0 { // a respawn that did not get as far as running
			last = "the last restart failed: " + p.LastCrash.Status
		}
		al := Alert{ID: "crash " + key, Kind: "crash_loop", Pool: key,
			Message: fmt.Sprintf("%s workers of %s crashed %d times in the last %s; %s, %s ago",
				p.Kind, where, d, humanDuration(crashWindow), last, humanDuration(now.Sub(p.LastCrash.Time)))}
		if p.LastCrash.Stderr != "" {
			al.Detail = p.LastCrash.Stderr
		} else {
			al.Message += "; it wrote nothing to stderr"
		}
		add(al)
	}
	if p.Queued > 0 && !p.QueuedAt.IsZero() && now.Sub(p.QueuedAt) >= saturatedFor {
		who := fmt.Sprintf("all %d %s workers of %s are", p.Size, p.Kind, where)
		if p.Size == 1 {
			who = fmt.Sprintf("the %s worker of %s is", p.Kind, where)
		}
		add(Alert{ID: "saturated " + key, Kind: "saturated", Pool: key,
			Message: fmt.Sprintf("%s busy (%s in flight), %d more waiting for %s: raise processes or threads, or find the slow requests",
				who, plural(p.Busy, "request"), p.Queued, humanDuration(now.Sub(p.QueuedAt)))})
	}
}

// certAlert is a certificate whose last issuance, renewal or load failed.
func certAlert(now time.Time, c certs.CertStatus) Alert {
	msg := fmt.Sprintf("certificate for %s (%s): ", c.Name, c.Source)
	if c.Source == "own" {
		msg += "the files cannot be used"
	} else {
		msg += "obtaining or renewing it failed"
	}
	if !c.LastAttempt.IsZero() {
		msg += fmt.Sprintf(" (last try %s ago)", humanDuration(now.Sub(c.LastAttempt)))
	}
	switch left := c.NotAfter.Sub(now); {
	case c.NotAfter.IsZero():
		msg += "; no certificate is served for it"
	case left <= 0:
		msg += fmt.Sprintf("; the one served expired %s ago", humanDuration(-left))
	default:
		msg += fmt.Sprintf("; the one served expires in %s", humanDuration(left))
	}
	return Alert{ID: "cert " + c.Source + " " + c.Name, Kind: "certificate", Message: msg, Detail: c.LastError}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// humanDuration says d the way a person would: "40 s", "5 min", "2 h 10 min",
// "3 days".
func humanDuration(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d h %d min", h, m)
	default:
		if days := int(d / (24 * time.Hour)); days > 1 {
			return fmt.Sprintf("%d days", days)
		}
		return "1 day"
	}
}
