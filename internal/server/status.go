package server

import (
	"time"

	"gantry/internal/certs"
)

// Status is a snapshot of the server for the admin API.
type Status struct {
	Version       string       `json:"version"`
	Started       time.Time    `json:"started"`
	UptimeS       float64      `json:"uptime_s"`
	RequestsTotal uint64       `json:"requests_total"`
	ConfigFile    string       `json:"config_file"`
	LastReload    ReloadResult `json:"last_reload"`
	Sites         []SiteStatus `json:"sites"`
	Pools         []PoolStatus `json:"pools"`
	// Certificates of the HTTPS listeners (none without tls_listen).
	Certificates []certs.CertStatus `json:"certificates,omitempty"`
}

// PoolStatus lists the worker processes of one route (wsgi, fastcgi_command).
type PoolStatus struct {
	Site    string         `json:"site"`
	Route   string         `json:"route"`
	Kind    string         `json:"kind"`
	Workers []WorkerStatus `json:"workers"`
	// Crashes counts unexpected exits since the pool started (not reloads,
	// max_requests recycling or shutdowns); LastCrash is the latest of them.
	Crashes   int          `json:"crashes"`
	LastCrash *CrashStatus `json:"last_crash,omitempty"`
	Size      int          `json:"size"`                  // worker processes
	Capacity  int          `json:"capacity"`              // requests served at once
	Busy      int          `json:"busy"`                  // requests in flight
	Queued    int          `json:"queued"`                // requests waiting for a worker
	QueuedAt  time.Time    `json:"queued_since,omitzero"` // since when some are
	// LimitKills counts the processes ended by max_memory or max_cpu, by limit.
	LimitKills map[string]uint64 `json:"limit_kills,omitempty"`
}

// CrashStatus is a worker's unexpected exit.
type CrashStatus struct {
	Time   time.Time `json:"time"`
	PID    int       `json:"pid"`
	Status string    `json:"status"` // "exit status 1", "signal: segmentation fault"
	Stderr string    `json:"stderr"` // the worker's last stderr line
}

// WorkerStatus is one worker process.
type WorkerStatus struct {
	PID      int       `json:"pid"`
	State    string    `json:"state"`
	Requests uint64    `json:"requests"`
	Errors   uint64    `json:"errors"` // requests that failed in the app (embedded WSGI threads)
	RSSKB    int64     `json:"rss_kb"`
	Started  time.Time `json:"started"`
	Restarts int       `json:"restarts"`
	Inflight int       `json:"inflight"`
}

// SiteStatus describes one virtual host.
type SiteStatus struct {
	Name   string        `json:"name"`
	Hosts  []string      `json:"hosts"`
	Routes []RouteStatus `json:"routes"`
}

// RouteStatus describes one route.
type RouteStatus struct {
	Path   string `json:"path"`
	Kind   string `json:"kind"`
	Target string `json:"target"`
}

// Status returns a snapshot of the server.
func (s *Server) Status() Status {
	st := s.state.Load()
	s.reloadMu.Lock()
	last := s.lastReload
	s.reloadMu.Unlock()
	out := Status{
		Version: s.version, Started: s.started, UptimeS: time.Since(s.started).Seconds(),
		RequestsTotal: s.requests.Load(), ConfigFile: st.cfg.File, LastReload: last, Pools: []PoolStatus{},
	}
	for _, si := range st.sites {
		ss := SiteStatus{Name: si.name, Hosts: si.hosts}
		if ss.Hosts == nil {
			ss.Hosts = []string{}
		}
		for _, r := range si.routes {
			ss.Routes = append(ss.Routes, RouteStatus{Path: r.path, Kind: r.kind, Target: r.target})
			var kills map[string]uint64
			if l, ok := r.app.(LimitReporter); ok {
				kills = l.LimitKills()
			}
			p, ok := r.app.(PoolReporter)
			if ok || kills != nil {
				ps := PoolStatus{Site: si.name, Route: r.path, Kind: r.kind, Workers: []WorkerStatus{}, LimitKills: kills}
				if ok {
					h := p.Health()
					ps.Crashes, ps.Size, ps.Capacity = h.Crashes, h.Size, h.Size*h.Concurrency
					ps.Busy, ps.Queued, ps.QueuedAt = h.Busy, h.Queued, h.Since
					if h.Crashes > 0 {
						ps.LastCrash = &CrashStatus{Time: h.Last.Time, PID: h.Last.PID, Status: h.Last.Status, Stderr: h.Last.Stderr}
					}
					for _, w := range p.Workers() {
						ps.Workers = append(ps.Workers, WorkerStatus{PID: w.PID, State: w.State, Requests: w.Requests, Errors: w.Errors,
							RSSKB: w.RSSKB, Started: w.Started, Restarts: w.Restarts, Inflight: w.Inflight})
					}
				}
				out.Pools = append(out.Pools, ps)
			}
		}
		out.Sites = append(out.Sites, ss)
	}
	if s.certs != nil {
		out.Certificates = s.certs.Status()
	}
	return out
}

// InFlight returns the requests being answered now.
func (s *Server) InFlight() int64 { return s.inflight.Load() }

// ConfigText returns the loaded config file's text, for the dashboard's config tab.
func (s *Server) ConfigText() string { return s.state.Load().cfg.Text }
