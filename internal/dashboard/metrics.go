package dashboard

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gantry/internal/accesslog"
)

// metrics is gantry's own Prometheus registry (not the global one: a test or a
// library must not see or change it).
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	aborted  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	handler  http.Handler
}

// codes holds the label value of every status code, so counting a request does not
// format a number.
var codes = func() [600]string {
	var c [600]string
	for i := range c {
		c[i] = strconv.Itoa(i)
	}
	return c
}()

func newMetrics(d *Dashboard) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gantry_http_requests_total", Help: "HTTP requests answered, by site, route and status code.",
	}, []string{"site", "route", "code"})
	m.aborted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gantry_responses_aborted_total",
		Help: "Responses cut short after they began, by site, route and reason (backend, timeout, client, internal).",
	}, []string{"site", "route", "reason"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gantry_http_request_duration_seconds", Help: "Time from request to the end of the response, by site and route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"site", "route"})
	m.reg.MustRegister(m.requests, m.aborted, m.duration, &collector{d: d}, &trafficCollector{d: d},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: nil})
	return m
}

func (m *metrics) observe(rec *accesslog.Record) {
	site, route := rec.Site, rec.Route
	if site == "" {
		site = "none"
	}
	if route == "" {
		route = "none"
	}
	code := "other"
	if rec.Status >= 0 && rec.Status < len(codes) {
		code = codes[rec.Status]
	}
	m.requests.WithLabelValues(site, route, code).Inc()
	if rec.Aborted != "" {
		m.aborted.WithLabelValues(site, route, rec.Aborted).Inc()
	}
	m.duration.WithLabelValues(site, route).Observe(rec.Duration.Seconds())
}

// collector reads the worker pools and the telescope when Prometheus scrapes.
type collector struct{ d *Dashboard }

var (
	descWorkers     = prometheus.NewDesc("gantry_workers", "Worker processes of a pool, by state.", []string{"site", "route", "kind", "state"}, nil)
	descWorkerReqs  = prometheus.NewDesc("gantry_worker_requests_total", "Requests served by the pool's current workers.", []string{"site", "route", "kind"}, nil)
	descWorkerRSS   = prometheus.NewDesc("gantry_worker_rss_bytes", "Resident memory of the pool's workers.", []string{"site", "route", "kind"}, nil)
	descWorkerErrs  = prometheus.NewDesc("gantry_worker_errors_total", "Requests of the pool's current workers that failed in the app (embedded WSGI threads count them).", []string{"site", "route", "kind"}, nil)
	descWorkerResta = prometheus.NewDesc("gantry_worker_restarts_total", "Worker restarts (crashes, recycling) of the pool.", []string{"site", "route", "kind"}, nil)
	descLimitKills  = prometheus.NewDesc("gantry_limit_kills_total", "Processes (workers, CGI scripts) that the route's max_memory or max_cpu ended, by limit.", []string{"site", "route", "kind", "limit"}, nil)
	descHTTPSensor  = prometheus.NewDesc("gantry_telescope_http_unsolicited_total", "Unsolicited HTTP requests and connections, by category and rule.", []string{"category", "rule"}, nil)
	descHTTPSources = prometheus.NewDesc("gantry_telescope_http_sources", "Sources in the HTTP sensor's table.", nil, nil)
	descDarkHits    = prometheus.NewDesc("gantry_telescope_darkport_hits_total", "Connections and datagrams to dark ports, by port.", []string{"port"}, nil)
	descDarkProbes  = prometheus.NewDesc("gantry_telescope_darkport_probes_total", "Dark-port hits whose payload a rule named, by category and rule.", []string{"category", "rule"}, nil)
	descEvicted     = prometheus.NewDesc("gantry_telescope_evicted_total", "Entries dropped from full telescope tables.", []string{"sensor"}, nil)
	descPackets     = prometheus.NewDesc("gantry_telescope_packets_total", "Captured packets, by class.", []string{"class"}, nil)
	descScans       = prometheus.NewDesc("gantry_telescope_scans", "Scans in the packet telescope's report.", nil, nil)
	descAttacks     = prometheus.NewDesc("gantry_telescope_attacks", "DoS attacks in the packet telescope's report.", nil, nil)
	descBans        = prometheus.NewDesc("gantry_bans", "Bans held: active, or expired and remembered so that the next ban of the source lasts longer.", []string{"state"}, nil)
	descBansIssued  = prometheus.NewDesc("gantry_bans_issued_total", "Bans issued, by rule.", []string{"rule"}, nil)
	descBansRefused = prometheus.NewDesc("gantry_bans_refused_connections_total", "Connections of banned sources closed at accept.", nil, nil)
	descBansReqs    = prometheus.NewDesc("gantry_bans_refused_requests_total", "Requests answered 403 because the client a trusted proxy forwarded them for is banned.", nil, nil)
	descBansEvicted = prometheus.NewDesc("gantry_bans_evicted_total", "Bans dropped because the list was full ([telescope.ban] max).", nil, nil)
	descExported    = prometheus.NewDesc("gantry_telescope_export_exported_total", "Telescope rows ClickHouse accepted ([telescope] export).", nil, nil)
	descExpDropped  = prometheus.NewDesc("gantry_telescope_export_dropped_total", "Telescope rows dropped because the export's queue was full (ClickHouse slow or away).", nil, nil)
	descExpQueued   = prometheus.NewDesc("gantry_telescope_export_queued", "Telescope rows waiting to be sent to ClickHouse.", nil, nil)
	descCertExpiry  = prometheus.NewDesc("gantry_tls_cert_expiry_seconds", "Seconds until a certificate of the HTTPS listeners expires (negative: expired), by name and source (acme, internal, own).", []string{"name", "source"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWorkers, descWorkerReqs, descWorkerErrs, descWorkerRSS, descWorkerResta, descLimitKills, descHTTPSensor,
		descHTTPSources, descDarkHits, descDarkProbes, descEvicted, descPackets, descScans, descAttacks, descCertExpiry,
		descBans, descBansIssued, descBansRefused, descBansReqs, descBansEvicted, descExported, descExpDropped, descExpQueued} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	status := d.opts.Server.Status()
	for _, cs := range status.Certificates {
		// A name still waiting for its first certificate has no expiry to report.
		if !cs.NotAfter.IsZero() {
			ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, time.Until(cs.NotAfter).Seconds(), cs.Name, cs.Source)
		}
	}
	for _, p := range status.Pools {
		states := map[string]float64{}
		var reqs, errs, rss, restarts float64
		for _, w := range p.Workers {
			states[w.State]++
			reqs += float64(w.Requests)
			errs += float64(w.Errors)
			rss += float64(w.RSSKB) * 1024
			restarts += float64(w.Restarts)
		}
		for st, n := range states {
			ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, n, p.Site, p.Route, p.Kind, st)
		}
		ch <- prometheus.MustNewConstMetric(descWorkerReqs, prometheus.CounterValue, reqs, p.Site, p.Route, p.Kind)
		ch <- prometheus.MustNewConstMetric(descWorkerErrs, prometheus.CounterValue, errs, p.Site, p.Route, p.Kind)
		ch <- prometheus.MustNewConstMetric(descWorkerRSS, prometheus.GaugeValue, rss, p.Site, p.Route, p.Kind)
		ch <- prometheus.MustNewConstMetric(descWorkerResta, prometheus.CounterValue, restarts, p.Site, p.Route, p.Kind)
		for limit, n := range p.LimitKills {
			ch <- prometheus.MustNewConstMetric(descLimitKills, prometheus.CounterValue, float64(n), p.Site, p.Route, p.Kind, limit)
		}
	}
	if s := d.opts.Sensor; s != nil {
		for _, rc := range s.Counts() {
			ch <- prometheus.MustNewConstMetric(descHTTPSensor, prometheus.CounterValue, float64(rc.Count), rc.Category, rc.Name)
		}
		snap := s.Snapshot(1)
		ch <- prometheus.MustNewConstMetric(descHTTPSources, prometheus.GaugeValue, float64(snap.TrackedSources))
		ch <- prometheus.MustNewConstMetric(descEvicted, prometheus.CounterValue, float64(snap.Evicted), "http")
	}
	if p := d.opts.Dark; p != nil {
		snap := p.Snapshot(1)
		for port, n := range snap.Ports {
			ch <- prometheus.MustNewConstMetric(descDarkHits, prometheus.CounterValue, float64(n), port)
		}
		for _, r := range snap.Rules {
			ch <- prometheus.MustNewConstMetric(descDarkProbes, prometheus.CounterValue, float64(r.Count), r.Category, r.Name)
		}
		ch <- prometheus.MustNewConstMetric(descEvicted, prometheus.CounterValue, float64(snap.Evicted), "darkport")
	}
	if b := d.opts.Bans; b != nil {
		_, st := b.Snapshot(1)
		ch <- prometheus.MustNewConstMetric(descBans, prometheus.GaugeValue, float64(st.Active), "active")
		ch <- prometheus.MustNewConstMetric(descBans, prometheus.GaugeValue, float64(st.Remembered), "remembered")
		for rule, n := range st.Issued {
			ch <- prometheus.MustNewConstMetric(descBansIssued, prometheus.CounterValue, float64(n), rule)
		}
		ch <- prometheus.MustNewConstMetric(descBansRefused, prometheus.CounterValue, float64(st.Refused))
		ch <- prometheus.MustNewConstMetric(descBansReqs, prometheus.CounterValue, float64(st.RefusedRequests))
		ch <- prometheus.MustNewConstMetric(descBansEvicted, prometheus.CounterValue, float64(st.Evicted))
		ch <- prometheus.MustNewConstMetric(descEvicted, prometheus.CounterValue, float64(st.CountersEvicted), "bans")
	}
	if x := d.opts.Export; x != nil {
		s := x.Stats()
		ch <- prometheus.MustNewConstMetric(descExported, prometheus.CounterValue, float64(s.Exported))
		ch <- prometheus.MustNewConstMetric(descExpDropped, prometheus.CounterValue, float64(s.Dropped))
		ch <- prometheus.MustNewConstMetric(descExpQueued, prometheus.GaugeValue, float64(s.Queued))
	}
	if p := d.opts.Packets; p != nil {
		r := p.Snapshot()
		for class, n := range map[string]uint64{"backscatter": r.Classes.Backscatter, "scan": r.Classes.Scan, "other": r.Classes.Other} {
			ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(n), class)
		}
		ch <- prometheus.MustNewConstMetric(descScans, prometheus.GaugeValue, float64(len(r.Scans)))
		ch <- prometheus.MustNewConstMetric(descAttacks, prometheus.GaugeValue, float64(len(r.Attacks)))
		ch <- prometheus.MustNewConstMetric(descEvicted, prometheus.CounterValue, float64(r.Evicted), "packets")
	}
}
