package dashboard

import (
	"net/http"
	"strconv"
	"time"
)

// openHistory opens the history file, or keeps the history in memory when
// there is none. Either way the dashboard starts: a history file that cannot be
// opened is logged, not fatal.
func (d *Dashboard) openHistory() {
	d.traffic = newTraffic()
	if d.opts.HistoryFile == "" {
		d.store = newStore()
		return
	}
	s, err := openStore(d.opts.HistoryFile, d.log)
	if err != nil {
		d.log.Warn("history kept in memory only: the graphs restart empty after a restart", "err", err)
		s = newStore()
	}
	d.store = s
}

// inFlighter is a server that counts the requests it is answering
// (*server.Server).
type inFlighter interface{ InFlight() int64 }

// sampleTraffic completes a tick's sample with the traffic numbers and keeps it.
func (d *Dashboard) sampleTraffic(s *Sample, secs float64) {
	if f, ok := d.opts.Server.(inFlighter); ok {
		s.InFlight = float64(f.InFlight())
	}
	t := d.traffic
	in, out := t.bytesIn.Load(), t.bytesOut.Load()
	s.BytesIn, s.BytesOut = round3(float64(in-t.lastIn)/secs), round3(float64(out-t.lastOut)/secs)
	t.lastIn, t.lastOut = in, out
	d.traffic.tick(secs)
	d.store.add(pointOf(s))
}

func pointOf(s *Sample) histPoint {
	p := histPoint{T: s.Time}
	p.V[fRPS] = s.RPS
	for i, name := range classNames[1:] {
		p.V[f1xx+i] = s.Requests[name]
	}
	p.V[fP50], p.V[fP99] = s.P50MS, s.P99MS
	p.V[fUnsolicited], p.V[fDark] = s.Unsolicited, s.Dark
	p.V[fBackscatter], p.V[fScan], p.V[fOther] = s.Packets["backscatter"], s.Packets["scan"], s.Packets["other"]
	p.V[fInFlight], p.V[fBytesIn], p.V[fBytesOut] = s.InFlight, s.BytesIn, s.BytesOut
	p.V[fAborted] = float64(s.Aborted)
	return p
}

// Ranges of /api/history?range=.
var historyRanges = map[string]time.Duration{"5m": 5 * time.Minute, "1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour}

// HistorySeries is the body of GET /api/history?range=: columns, as uPlot takes
// them, and why a chart has nothing to show.
type HistorySeries struct {
	Range  string               `json:"range"`
	Step   int                  `json:"step"` // seconds between points (the last minute's are a second apart)
	T      []float64            `json:"t"`    // Unix seconds
	Series map[string][]float64 `json:"series"`
	// Off names each source that is off and the setting that turns it on.
	Off map[string]string `json:"off"`
}

func (d *Dashboard) historyAPI(w http.ResponseWriter, r *http.Request) {
	rng := r.URL.Query().Get("range")
	if rng == "" {
		// the live samples of the last ten minutes, as the event stream sends them
		writeJSON(w, http.StatusOK, d.hist.list())
		return
	}
	span, ok := historyRanges[rng]
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "range " + strconv.Quote(rng) + ": want 5m, 1h, 24h or 7d"})
		return
	}
	now := time.Now().UnixMilli()
	pts := d.store.since(now-span.Milliseconds(), now)
	out := HistorySeries{Range: rng, Step: 1, T: make([]float64, len(pts)), Series: map[string][]float64{}, Off: d.offSources()}
	if span > time.Hour {
		out.Step = 60
	}
	for i := range nFields {
		col := make([]float64, len(pts))
		for j := range pts {
			col[j] = pts[j].V[i]
		}
		out.Series[fieldNames[i]] = col
	}
	for j := range pts {
		out.T[j] = float64(pts[j].T) / 1000
	}
	writeJSON(w, http.StatusOK, out)
}

// offSources says which graphs have no source, and how to give them one.
func (d *Dashboard) offSources() map[string]string {
	off := map[string]string{}
	if d.opts.Packets == nil {
		off["packets"] = "packet capture is off: set [telescope] interface (needs root or CAP_NET_RAW)"
	}
	if d.opts.Sensor == nil {
		off["unsolicited"] = "the telescope is off: set [telescope] enabled = true"
	} else if d.opts.Dark == nil {
		off["dark"] = "no dark ports: list some in [telescope] dark_ports"
	}
	return off
}

func (d *Dashboard) routesAPI(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, d.traffic.snapshot())
}

// TopLists is the body of GET /api/top: the last hour's most frequent request
// paths, paths answered 404, and client addresses.
type TopLists struct {
	URLs     []TopEntry `json:"urls"`
	NotFound []TopEntry `json:"not_found"`
	Clients  []TopEntry `json:"clients"`
}

func (d *Dashboard) topAPI(w http.ResponseWriter, r *http.Request) {
	n := 20
	if v, err := strconv.Atoi(r.URL.Query().Get("n")); err == nil && v > 0 && v <= topKSlots {
		n = v
	}
	now := time.Now()
	writeJSON(w, http.StatusOK, TopLists{URLs: d.traffic.urls.top(n, now), NotFound: d.traffic.notFound.top(n, now),
		Clients: d.traffic.clients.top(n, now)})
}
