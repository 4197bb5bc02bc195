// Package dashboard is gantry's admin listener: a web dashboard (plain HTML, CSS and
// JS embedded in the binary, uPlot for the graphs), a JSON API, live rates as
// server-sent events, Prometheus metrics, and the login that guards them when the
// listener is not on loopback.
package dashboard

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gantry/internal/accesslog"
	"gantry/internal/ban"
	"gantry/internal/server"
	"gantry/internal/telescope"
	"gantry/internal/telescope/darkport"
	"gantry/internal/telescope/export"
	"gantry/internal/telescope/httpsensor"
)

// Server is what the dashboard shows and controls; *server.Server implements it.
type Server interface {
	Status() server.Status
	ConfigText() string
	Reload(ctx context.Context) error
}

// Packets is the live packet telescope (*telescope.Live).
type Packets interface {
	Snapshot() telescope.Report
}

// Options configures the dashboard.
type Options struct {
	Server Server
	// Sensor, Dark and Packets are the telescope's sensors; each may be nil (off).
	Sensor  *httpsensor.Sensor
	Dark    *darkport.Ports
	Packets Packets
	// PasswordHash (bcrypt or argon2id) turns the login on. Without it the dashboard
	// answers only to requests whose Host names this machine (127.0.0.1, localhost).
	PasswordHash string
	// Interface is the captured network interface, shown on the telescope tab.
	Interface string
	Logger    *slog.Logger
	// Tick is the sampling interval of /api/events (default one second).
	Tick time.Duration
	// Bans are the telescope's bans, nil when off.
	Bans *ban.List
	// Export is the telescope's ClickHouse export, nil when off.
	Export Exporter
	// LoginFailed, when set, is told the source of every failed admin login
	// (a wrong password on the form or in Basic credentials).
	LoginFailed func(netip.Addr)
	// HistoryFile keeps the graphs' history across restarts (an hour at one
	// second, seven days at one minute); "" keeps it in memory only.
	HistoryFile string
	// Locate, when set, locates the scanners and victims of the packet report
	// ([telescope] geoip).
	Locate func(netip.Addr) telescope.Location
}

// Exporter is what the dashboard shows of the ClickHouse export: its counters.
type Exporter interface{ Stats() export.Stats }

// Dashboard is the admin listener's handler. Feed it every finished request with
// Observe; Close stops its sampler.
type Dashboard struct {
	opts    Options
	log     *slog.Logger
	auth    *auth
	mux     *http.ServeMux
	metrics *metrics
	win     window
	hist    *history
	store   *store
	traffic *traffic
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	logMu   sync.Mutex
	logRing []LogEntry
	logNext int
	logSeq  atomic.Uint64

	alertMu sync.Mutex
	alerts  []Alert
}

// LogEntry is one request of the live access log.
type LogEntry struct {
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	Remote     string    `json:"remote"`
	Method     string    `json:"method"`
	URI        string    `json:"uri"`
	Host       string    `json:"host"`
	Status     int       `json:"status"`
	Bytes      int64     `json:"bytes"`
	DurationMS float64   `json:"duration_ms"`
	Site       string    `json:"site"`
	Route      string    `json:"route"`
	UserAgent  string    `json:"user_agent"`
	Category   string    `json:"category,omitempty"`
	Rule       string    `json:"rule,omitempty"`
}

const logLen = 1000

// New builds the dashboard and starts its once-a-second sampler.
func New(opts Options) (*Dashboard, error) {
	if opts.Server == nil {
		return nil, fmt.Errorf("dashboard: no server")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Tick <= 0 {
		opts.Tick = time.Second
	}
	var hash *passwordHash
	if opts.PasswordHash != "" {
		h, err := parseHash(opts.PasswordHash)
		if err != nil {
			return nil, fmt.Errorf("[admin] password_hash: %w", err)
		}
		hash = h
	}
	d := &Dashboard{opts: opts, log: opts.Logger, auth: newAuth(hash, opts.PasswordHash), hist: newHistory(),
		logRing: make([]LogEntry, 0, logLen), stop: make(chan struct{}), done: make(chan struct{})}
	d.openHistory()
	d.metrics = newMetrics(d)
	d.routes()
	go d.sampler()
	return d, nil
}

// Close stops the sampler and ends the event streams.
func (d *Dashboard) Close() {
	d.once.Do(func() {
		close(d.stop)
		<-d.done
		d.store.close()
	})
}

// Observe records one finished request and the sensor's verdict on it. It must be
// quick: it runs on every request.
func (d *Dashboard) Observe(rec *accesslog.Record, v httpsensor.Verdict) {
	class := rec.Status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	d.win.classes[class].Add(1)
	d.win.lat[latBucket(rec.Duration)].Add(1)
	if rec.Aborted != "" {
		d.win.aborted.Add(1)
	}
	d.metrics.observe(rec)
	d.traffic.observe(rec, rec.Time.Add(rec.Duration))
	uri := rec.URI
	if len(uri) > 512 {
		uri = uri[:512]
	}
	e := LogEntry{Seq: d.logSeq.Add(1), Time: rec.Time, Remote: rec.RemoteAddr, Method: rec.Method, URI: uri,
		Host: rec.Host, Status: rec.Status, Bytes: rec.Bytes, DurationMS: float64(rec.Duration.Microseconds()) / 1000,
		Site: rec.Site, Route: rec.Route, UserAgent: rec.UserAgent, Category: v.Category, Rule: v.Rule}
	d.logMu.Lock()
	if len(d.logRing) < logLen {
		d.logRing = append(d.logRing, e)
	} else {
		d.logRing[d.logNext] = e
		d.logNext = (d.logNext + 1) % logLen
	}
	d.logMu.Unlock()
}

// accessLog returns up to limit entries newer than after, newest first.
func (d *Dashboard) accessLog(after uint64, limit int) []LogEntry {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	n := len(d.logRing)
	out := make([]LogEntry, 0, min(n, limit))
	for i := 0; i < n && len(out) < limit; i++ {
		e := d.logRing[(d.logNext+n-1-i)%n]
		if e.Seq <= after {
			break
		}
		out = append(out, e)
	}
	return out
}

// sampler turns the counters into one Sample per tick.
func (d *Dashboard) sampler() {
	defer close(d.done)
	t := time.NewTicker(d.opts.Tick)
	defer t.Stop()
	a := newAlerter()
	last := time.Now()
	var lastUns, lastDark uint64
	var lastPk telescope.Classes
	if d.opts.Sensor != nil {
		lastUns = d.opts.Sensor.Total()
		a.exploits = []point{{last, d.opts.Sensor.CategoryTotal(httpsensor.Exploit)}}
	}
	if d.opts.Dark != nil {
		lastDark = d.opts.Dark.Total()
	}
	if d.opts.Packets != nil {
		lastPk = d.opts.Packets.Snapshot().Classes
	}
	for i := 0; ; i++ {
		select {
		case <-d.stop:
			return
		case now := <-t.C:
			secs := now.Sub(last).Seconds()
			last = now
			// the same shape with or without a capture: zeros when nothing is captured
			s := Sample{Time: now.UnixMilli(), Packets: map[string]float64{"backscatter": 0, "scan": 0, "other": 0}}
			var n5xx uint64
			s.RPS, s.Requests, n5xx, s.P50MS, s.P99MS = d.win.take(secs)
			s.Aborted = d.win.aborted.Load()
			var exploits uint64
			if d.opts.Sensor != nil {
				tot := d.opts.Sensor.Total()
				s.Unsolicited = round3(float64(tot-lastUns) / secs)
				lastUns = tot
				exploits = d.opts.Sensor.CategoryTotal(httpsensor.Exploit)
			}
			if d.opts.Dark != nil {
				tot := d.opts.Dark.Total()
				s.Dark = round3(float64(tot-lastDark) / secs)
				lastDark = tot
			}
			var rep *telescope.Report
			if d.opts.Packets != nil {
				r := d.opts.Packets.Snapshot()
				rep = &r
				c := r.Classes
				s.Packets["backscatter"] = round3(float64(c.Backscatter-lastPk.Backscatter) / secs)
				s.Packets["scan"] = round3(float64(c.Scan-lastPk.Scan) / secs)
				s.Packets["other"] = round3(float64(c.Other-lastPk.Other) / secs)
				lastPk = c
			}
			var st *server.Status
			if i%5 == 0 {
				v := d.opts.Server.Status()
				st = &v
			}
			s.Alerts = a.update(now, alertInput{
				requests: uint64(s.RPS*secs + 0.5), errors5xx: n5xx, status: st,
				exploits: exploits, sensor: d.opts.Sensor, report: rep,
			})
			d.alertMu.Lock()
			d.alerts = s.Alerts
			d.alertMu.Unlock()
			d.sampleTraffic(&s, secs)
			d.hist.add(s)
		}
	}
}

func (d *Dashboard) currentAlerts() []Alert {
	d.alertMu.Lock()
	defer d.alertMu.Unlock()
	return append([]Alert{}, d.alerts...)
}
