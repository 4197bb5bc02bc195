package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"

	"gantry/internal/accesslog"
	"gantry/internal/ban"
	"gantry/internal/config"
	"gantry/internal/dashboard"
	"gantry/internal/nftban"
	"gantry/internal/proxy"
	"gantry/internal/server"
	"gantry/internal/telescope"
	"gantry/internal/telescope/darkport"
	"gantry/internal/telescope/export"
	"gantry/internal/telescope/geoip"
	"gantry/internal/telescope/httpsensor"
)

// extras are what runs beside the HTTP listeners: the admin listener and the
// telescope's sensors.
type extras struct {
	cfg     *config.Config
	log     *slog.Logger
	closers []func()

	sensor    *httpsensor.Sensor // nil when [telescope] enabled = false
	bans      *ban.List          // nil when [telescope.ban] enabled = false
	dark      *darkport.Ports    // nil without dark ports
	export    *export.Exporter   // nil without [telescope] export
	dash      *dashboard.Dashboard
	adminAddr net.Addr
}

// exportQueue bounds the export's queue in rows; 0 is the export package's
// default. Tests lower it to fill the queue with a few requests.
var exportQueue = 0

// newExtras prepares the sensors; nothing listens yet.
func newExtras(cfg *config.Config, log *slog.Logger) (*extras, error) {
	e := &extras{cfg: cfg, log: log}
	if cfg.Telescope.On() {
		e.sensor = httpsensor.New(httpsensor.Options{})
	}
	if tc := cfg.Telescope; tc.On() && tc.Export != "" {
		target, err := export.ParseTarget(tc.Export, tc.ExportUser, tc.ExportPassword)
		if err != nil {
			return nil, fmt.Errorf("[telescope] export: %w", err)
		}
		x := export.Start(export.Options{Target: target, Node: tc.Node(), Queue: exportQueue, Logger: log.With("component", "export")})
		e.export = x
		e.closers = append(e.closers, x.Close)
		log.Info("exporting the telescope to ClickHouse", "target", target.String(), "node", tc.Node())
	}
	if b := cfg.Telescope.Ban; b.Enabled && cfg.Telescope.On() {
		l, err := newBans(cfg, log.With("component", "ban"), e.export)
		if err != nil {
			return nil, err
		}
		e.bans = l
		e.closers = append(e.closers, func() {
			if err := l.Close(); err != nil {
				log.Error("bans not saved", "err", err)
			}
		})
	}
	return e, nil
}

// newBans makes the ban list of [telescope.ban], its bans exported through x
// when there is one. The proxies of every proxy route's trusted_proxies are
// never banned: one is many clients.
func newBans(cfg *config.Config, log *slog.Logger, x *export.Exporter) (*ban.List, error) {
	b := cfg.Telescope.Ban
	opts := ban.Options{Durations: b.Durations(), ScannerHits: b.Scanner(), ScannerWindow: b.ScannerWindow.D(),
		DarkPorts: b.Dark(), AdminLogins: b.Logins(), RateLimited: b.Limited(), Escalate: b.Escalate(), Window: b.Window.D(), Max: b.Max, Logger: log}
	if x != nil {
		opts.OnBan = func(en ban.Entry) {
			x.Ban(export.Ban{Time: en.Since, Source: en.Source, Rule: en.Rule, Sample: en.Sample, Until: en.Until, Strikes: en.Strikes})
		}
	}
	if b.File != "off" {
		opts.File = b.File
	}
	for _, a := range b.Allow {
		p, err := config.ParseCIDROrAddr(a)
		if err != nil {
			return nil, fmt.Errorf("[telescope.ban] allow %q: %w", a, err)
		}
		opts.Allow = append(opts.Allow, p)
	}
	for i := range cfg.Sites {
		for _, r := range cfg.Sites[i].Routes {
			po, ok := r.Handler.(*proxy.Options)
			if !ok {
				continue
			}
			for _, tp := range po.TrustedProxies {
				if p, err := config.ParseCIDROrAddr(tp); err == nil {
					opts.Trusted = append(opts.Trusted, p)
				}
			}
		}
	}
	return ban.New(opts)
}

// gate is the bans as the listeners' gate, nil without them.
func (e *extras) gate() server.Gate {
	if e.bans == nil {
		return nil
	}
	return e.bans
}

// wrapListener lets the HTTP sensor see every connection's first bytes.
func (e *extras) wrapListener(ln net.Listener) net.Listener {
	if e.sensor == nil {
		return ln
	}
	return e.sensor.WrapListener(ln)
}

// sensorTLS shows the HTTP sensor the handshakes of the TLS listeners.
type sensorTLS struct{ s *httpsensor.Sensor }

var _ server.TLSObserver = sensorTLS{}

func (o sensorTLS) TLSHello(h *tls.ClientHelloInfo, known func(string) bool) {
	o.s.ClientHello(h, known)
}
func (o sensorTLS) TLSFailed(c net.Conn, err error) { o.s.TLSHandshakeFailed(c, err) }

// tlsObserver is the sensor as the TLS listeners' observer, nil without one.
func (e *extras) tlsObserver() server.TLSObserver {
	if e.sensor == nil {
		return nil
	}
	return sensorTLS{e.sensor}
}

// start binds the admin listener and starts the sensors; srv is not serving yet, so
// observers registered here see every request.
func (e *extras) start(ctx context.Context, srv *server.Server) error {
	tc := e.cfg.Telescope
	var dark *darkport.Ports
	var live *telescope.Live
	if tc.On() && len(tc.DarkPorts) > 0 {
		var ports []darkport.Port
		for _, s := range tc.DarkPorts {
			p, err := config.ParseDarkPort(s)
			if err != nil {
				return fmt.Errorf("[telescope] dark_ports %q: %w", s, err)
			}
			ports = append(ports, darkport.Port{Addr: p.Addr, Protocol: p.Protocol})
		}
		dopts := darkport.Options{Ports: ports, Logger: e.log.With("component", "darkport")}
		if e.bans != nil {
			dopts.Banned = e.bans.Banned
		}
		if e.bans != nil || e.export != nil {
			dopts.OnTCP = func(src netip.Addr, port uint16, data []byte) {
				if e.bans != nil {
					e.bans.Offense(src, ban.DarkPort, fmt.Sprintf("dark port %d/tcp: %s", port, strconv.QuoteToASCII(string(data[:min(len(data), 64)]))))
				}
				if e.export != nil {
					e.export.DarkPortHit(export.DarkPortHit{Time: time.Now(), Source: src, Port: port, Protocol: "tcp", Data: data})
				}
			}
		}
		if e.export != nil {
			dopts.OnUDP = func(src netip.Addr, port uint16, data []byte) {
				e.export.DarkPortHit(export.DarkPortHit{Time: time.Now(), Source: src, Port: port, Protocol: "udp", Data: data})
			}
		}
		d, err := darkport.Start(ctx, dopts)
		if err != nil {
			return fmt.Errorf("%w (remove it from [telescope] dark_ports or stop what listens there)", err)
		}
		dark, e.dark = d, d
		e.closers = append(e.closers, func() { d.Close() })
		e.log.Info("dark ports listening", "ports", d.Addrs())
	}
	if tc.On() && tc.Interface != "" {
		opts, err := telescopeOptions(tc)
		if err != nil {
			return err
		}
		if e.export != nil {
			opts.OnScan, opts.OnAttack = e.export.Scan, e.export.Attack
		}
		l, err := telescope.StartLive(ctx, tc.Interface, opts, e.log.With("component", "telescope"))
		if err != nil {
			return fmt.Errorf("[telescope] interface %q: %w (capturing needs root or CAP_NET_RAW; or leave interface empty)", tc.Interface, err)
		}
		live = l
		e.closers = append(e.closers, func() { l.Close() })
		e.log.Info("capturing packets", "interface", tc.Interface)
	}
	var locate func(netip.Addr) telescope.Location
	if tc.On() && len(tc.GeoIP) > 0 {
		db, err := geoip.Open(tc.GeoIP)
		if err != nil {
			return fmt.Errorf("[telescope] geoip: %w", err)
		}
		e.closers = append(e.closers, func() { db.Close() })
		locate = db.Lookup
		e.log.Info("locating scanners and victims", "geoip", tc.GeoIP)
	}
	if b := tc.Ban; e.bans != nil && len(b.Import) > 0 {
		opts := ban.ImportOptions{Every: b.ImportEvery.D()}
		var names []string
		for _, raw := range b.Import {
			u, err := config.ImportURL(raw)
			if err != nil {
				return fmt.Errorf("[telescope.ban] import: %w", err)
			}
			opts.Sources = append(opts.Sources, u)
			names = append(names, u.Redacted())
		}
		e.closers = append(e.closers, e.bans.StartImport(ctx, opts))
		e.log.Info("importing bans", "from", names, "every", opts.Every.String())
	}
	if e.cfg.Admin.Listen != "off" {
		opts := dashboard.Options{Server: srv, Sensor: e.sensor, Dark: dark, PasswordHash: e.cfg.Admin.PasswordHash,
			Interface: tc.Interface, Logger: e.log.With("component", "admin"), Bans: e.bans, Locate: locate}
		if d := config.DefaultStateDir(); d != "" {
			opts.HistoryFile = filepath.Join(d, "dashboard-history")
		}
		if e.export != nil {
			opts.Export = e.export
		}
		if e.bans != nil {
			opts.LoginFailed = func(src netip.Addr) { e.bans.Offense(src, ban.AdminLogin, "failed admin login") }
		}
		if live != nil {
			opts.Packets = live
		}
		d, err := dashboard.New(opts)
		if err != nil {
			return err
		}
		addr, err := srv.ServeAdmin(d)
		if err != nil {
			d.Close()
			return err
		}
		e.dash, e.adminAddr = d, addr
		e.closers = append(e.closers, d.Close)
		e.log.Info("admin dashboard", "addr", "http://"+addr.String(), "login", e.cfg.Admin.PasswordHash != "")
	}
	if e.bans != nil && tc.Ban.NFTables {
		e.startNFT(srv)
	}
	if e.sensor != nil || e.dash != nil {
		srv.Observe(e.observe(srv))
	}
	return nil
}

// startNFT puts the bans in the kernel's nftables, dropping banned sources'
// packets to gantry's own ports: HTTP, HTTPS (TCP, and UDP for HTTP/3) and the
// admin listener's. Without CAP_NET_ADMIN it says so and gantry's own check
// goes on alone.
func (e *extras) startNFT(srv *server.Server) {
	var opts nftban.Options
	port := func(a net.Addr) uint16 {
		ap, _ := netip.ParseAddrPort(a.String())
		return ap.Port()
	}
	for _, a := range srv.Addrs() {
		opts.TCPPorts = append(opts.TCPPorts, port(a))
	}
	for _, a := range srv.TLSAddrs() {
		opts.TCPPorts = append(opts.TCPPorts, port(a))
		opts.UDPPorts = append(opts.UDPPorts, port(a))
	}
	if e.adminAddr != nil {
		opts.TCPPorts = append(opts.TCPPorts, port(e.adminAddr))
	}
	opts.Logger = e.log.With("component", "nftables")
	t, err := nftban.Open(opts)
	if err != nil {
		e.log.Warn("bans not put in nftables (it needs CAP_NET_ADMIN: AmbientCapabilities=CAP_NET_ADMIN under systemd); gantry enforces them itself", "err", err)
		return
	}
	e.bans.SetKernel(t)
	e.closers = append(e.closers, func() {
		if err := t.Close(); err != nil {
			e.log.Warn("nftables table inet gantry not removed; remove it with: nft delete table inet gantry", "err", err)
		}
	})
	e.log.Info("bans in nftables", "table", "inet "+nftban.TableName, "tcp_ports", opts.TCPPorts, "udp_ports", opts.UDPPorts)
}

// observe returns the observer that runs the HTTP sensor and feeds the dashboard.
func (e *extras) observe(srv *server.Server) server.Observer {
	return func(rec *accesslog.Record) {
		var v httpsensor.Verdict
		if e.sensor != nil {
			v = e.sensor.Observe(rec.Request, rec.Status, rec.Site, hasNamedSites(srv.Config()), rec.Time.Add(rec.Duration))
		}
		if e.bans != nil && v.Category != "" {
			e.offense(rec, v)
		}
		if e.export != nil && v.Category != "" {
			e.exportRequest(rec, v)
		}
		if e.dash != nil {
			e.dash.Observe(rec, v)
		}
	}
}

// offense reports a request the sensor found unsolicited to the bans. The
// source is the TCP peer or, behind a trusted proxy (every proxy route's
// trusted_proxies), the client its X-Forwarded-For names (ban.List.Client):
// from anyone else the header is ignored, so a client cannot name someone else
// to be banned; a trusted proxy (one address, many clients) is never banned.
// A verdict of counts kept by TCP peer is the peer's alone (peerVerdict).
func (e *extras) offense(rec *accesslog.Record, v httpsensor.Verdict) {
	var rule string
	switch {
	case v.Category == httpsensor.Exploit:
		rule = ban.Exploit
	case v.Category == httpsensor.Scanner:
		rule = ban.Scanner
	case v.Rule == "rate-limited":
		rule = ban.RateLimited
	default:
		return
	}
	var xff []string
	if rec.Request != nil && !peerVerdict(v) {
		xff = rec.Request.Header["X-Forwarded-For"]
	}
	src := e.bans.Client(rec.RemoteAddr, xff)
	if !src.IsValid() {
		return
	}
	e.bans.Offense(src, rule, v.Rule+": "+rec.Method+" "+rec.URI)
}

// peerVerdict reports whether v comes of counts kept by TCP peer rather than
// of the request itself: a 429 of the rate limit, a 404 after the sensor saw a
// burst of them. Behind a trusted proxy those counts are every client's
// together, so they say nothing of the client the request was forwarded for.
func peerVerdict(v httpsensor.Verdict) bool { return v.Rule == "rate-limited" || v.Rule == "404-burst" }

// exportRequest queues an unsolicited request for ClickHouse; the source is the
// TCP peer, as the access log has it.
func (e *extras) exportRequest(rec *accesslog.Record, v httpsensor.Verdict) {
	var src netip.Addr
	if ap, err := netip.ParseAddrPort(rec.RemoteAddr); err == nil {
		src = ap.Addr()
	}
	e.export.HTTPEvent(export.HTTPEvent{Time: rec.Time, Source: src, Host: rec.Host, Method: rec.Method, Path: rec.URI,
		UserAgent: rec.UserAgent, Rule: v.Rule, Category: v.Category, Status: rec.Status})
}

// hasNamedSites: only a config with host names makes an unknown or IP-literal Host
// suspicious; a config with just the default site answers to any name.
func hasNamedSites(cfg *config.Config) bool {
	for i := range cfg.Sites {
		if len(cfg.Sites[i].Hosts) > 0 {
			return true
		}
	}
	return false
}

// telescopeOptions maps [telescope] to the packet classifier's options; zero values
// keep the classifier's published defaults.
func telescopeOptions(tc config.Telescope) (telescope.Options, error) {
	o := telescope.Options{
		ScanHosts: tc.ScanHosts, ScanPorts: tc.ScanPorts, ScanIdle: tc.ScanIdle.D(),
		DoSPackets: tc.DoSPackets, DoSDuration: tc.DoSDuration.D(), DoSPPM: tc.DoSPPM,
	}
	for _, d := range tc.Dark {
		p, err := netip.ParsePrefix(d)
		if err != nil {
			return o, fmt.Errorf("[telescope] dark %q: %w", d, err)
		}
		o.Dark = append(o.Dark, p)
	}
	return o, nil
}

func (e *extras) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}
