package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"gantry/internal/accesslog"
	"gantry/internal/config"
	"gantry/internal/dashboard"
	"gantry/internal/server"
	"gantry/internal/telescope"
	"gantry/internal/telescope/darkport"
	"gantry/internal/telescope/httpsensor"
)

// extras are what runs beside the HTTP listeners: the admin listener and the
// telescope's sensors.
type extras struct {
	cfg     *config.Config
	log     *slog.Logger
	closers []func()

	sensor    *httpsensor.Sensor // nil when [telescope] enabled = false
	dash      *dashboard.Dashboard
	adminAddr net.Addr
}

// newExtras prepares the sensors; nothing listens yet.
func newExtras(cfg *config.Config, log *slog.Logger) (*extras, error) {
	e := &extras{cfg: cfg, log: log}
	if cfg.Telescope.On() {
		e.sensor = httpsensor.New(httpsensor.Options{})
	}
	return e, nil
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
		d, err := darkport.Start(ctx, darkport.Options{Ports: ports, Logger: e.log.With("component", "darkport")})
		if err != nil {
			return fmt.Errorf("%w (remove it from [telescope] dark_ports or stop what listens there)", err)
		}
		dark = d
		e.closers = append(e.closers, func() { d.Close() })
		e.log.Info("dark ports listening", "ports", d.Addrs())
	}
	if tc.On() && tc.Interface != "" {
		opts, err := telescopeOptions(tc)
		if err != nil {
			return err
		}
		l, err := telescope.StartLive(ctx, tc.Interface, opts, e.log.With("component", "telescope"))
		if err != nil {
			return fmt.Errorf("[telescope] interface %q: %w (capturing needs root or CAP_NET_RAW; or leave interface empty)", tc.Interface, err)
		}
		live = l
		e.closers = append(e.closers, func() { l.Close() })
		e.log.Info("capturing packets", "interface", tc.Interface)
	}
	if e.cfg.Admin.Listen != "off" {
		opts := dashboard.Options{Server: srv, Sensor: e.sensor, Dark: dark, PasswordHash: e.cfg.Admin.PasswordHash,
			Interface: tc.Interface, Logger: e.log.With("component", "admin")}
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
	if e.sensor != nil || e.dash != nil {
		srv.Observe(e.observe(srv))
	}
	return nil
}

// observe returns the observer that runs the HTTP sensor and feeds the dashboard.
func (e *extras) observe(srv *server.Server) server.Observer {
	return func(rec *accesslog.Record) {
		var v httpsensor.Verdict
		if e.sensor != nil {
			v = e.sensor.Observe(rec.Request, rec.Status, rec.Site, hasNamedSites(srv.Config()), rec.Time.Add(rec.Duration))
		}
		if e.dash != nil {
			e.dash.Observe(rec, v)
		}
	}
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
