package dashboard

import "github.com/prometheus/client_golang/prometheus"

// trafficCollector exports the numbers a mod_status or uWSGI stats user looks
// for: requests in flight, bytes, and each pool's busy workers and queue.
type trafficCollector struct{ d *Dashboard }

var (
	descInFlight  = prometheus.NewDesc("gantry_http_requests_in_flight", "Requests being answered now.", nil, nil)
	descBytesIn   = prometheus.NewDesc("gantry_http_request_body_bytes_total", "Request body bytes received: those read, chunked or not, whatever a Content-Length declared.", nil, nil)
	descBytesOut  = prometheus.NewDesc("gantry_http_response_bytes_total", "Response bytes sent.", nil, nil)
	descPoolBusy  = prometheus.NewDesc("gantry_pool_busy_workers", "Workers of a pool answering a request now.", []string{"site", "route", "kind"}, nil)
	descPoolQueue = prometheus.NewDesc("gantry_pool_queued_requests", "Requests waiting for a free worker of the pool.", []string{"site", "route", "kind"}, nil)
)

func (c *trafficCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInFlight, descBytesIn, descBytesOut, descPoolBusy, descPoolQueue} {
		ch <- d
	}
}

func (c *trafficCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	if f, ok := d.opts.Server.(inFlighter); ok {
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(f.InFlight()))
	}
	ch <- prometheus.MustNewConstMetric(descBytesIn, prometheus.CounterValue, float64(d.traffic.bytesIn.Load()))
	ch <- prometheus.MustNewConstMetric(descBytesOut, prometheus.CounterValue, float64(d.traffic.bytesOut.Load()))
	for _, p := range d.opts.Server.Status().Pools {
		busy := 0
		for _, w := range p.Workers {
			if w.Inflight > 0 {
				busy++
			}
		}
		ch <- prometheus.MustNewConstMetric(descPoolBusy, prometheus.GaugeValue, float64(busy), p.Site, p.Route, p.Kind)
		ch <- prometheus.MustNewConstMetric(descPoolQueue, prometheus.GaugeValue, float64(p.Queued), p.Site, p.Route, p.Kind)
	}
}
