package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"gantry/internal/cgi"
	"gantry/internal/config"
	"gantry/internal/server"
	"gantry/internal/systemd"
	"gantry/internal/wsgi"
)

type serveFlags struct {
	config, listen, admin, accessLog string
	tlsListen, tlsStorage            string
	wsgi, python, php                string
	cgi                              multiFlag
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func serve(args []string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&f.config, "c", "", "config file")
	fs.StringVar(&f.listen, "listen", "", "address to listen on (default 127.0.0.1:8080 without a config)")
	fs.StringVar(&f.admin, "admin", "", "admin listener address, or off (default 127.0.0.1:2020)")
	fs.StringVar(&f.accessLog, "access-log", "", "stdout, off, or a file")
	fs.StringVar(&f.tlsListen, "tls-listen", "", "also serve HTTPS on ADDR (a directory: with the internal CA, for localhost and 127.0.0.1)")
	fs.StringVar(&f.tlsStorage, "tls-storage", "", "where certificates and the internal CA are kept (default [tls] storage's)")
	fs.StringVar(&f.wsgi, "wsgi", "", "serve a WSGI app, MODULE:CALLABLE")
	fs.StringVar(&f.python, "python", "", "python interpreter for --wsgi (a venv's python selects the venv)")
	fs.StringVar(&f.php, "php", "", "serve *.php through FastCGI at ADDR, or auto")
	fs.Var(&f.cgi, "cgi", "serve PREFIX as CGI scripts from DIR (PREFIX=DIR; repeatable)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return fmt.Errorf("gantry serve: one directory at most, got %q", pos)
	}
	// Under systemd: the variables are read, and unset for the processes gantry
	// starts, before anything else.
	notifier, notifyErr := systemd.NewNotifier()
	defer notifier.Close()
	socks, err := systemd.Listeners()
	if err != nil {
		return err
	}
	inherited := systemd.NewSockets(socks)
	cfg, notes, err := serveConfig(f, pos)
	if err != nil {
		inherited.Close()
		return err
	}
	log, closeLog, err := openErrorLog(cfg.Server.ErrorLog, stderr)
	if err != nil {
		inherited.Close()
		return err
	}
	defer closeLog()
	for _, n := range notes {
		log.Info(n.msg, n.args...)
	}
	if cfg.Admin.PasswordHash != "" {
		if msg := openSecret(cfg.File, "[admin] password_hash"); msg != "" {
			log.Warn(msg)
		}
	}
	if notifyErr != nil {
		log.Warn("systemd notification", "err", notifyErr)
	}
	procs := serveProcs(os.Getenv("GOMAXPROCS") != "", startProcs, embeddedPython(cfg))
	runtime.GOMAXPROCS(procs)

	// Catch signals before anything starts: SIGHUP's default action is to exit, and
	// a reload sent the moment gantry says it is serving must not kill it.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	extras, err := newExtras(cfg, log)
	if err != nil {
		inherited.Close()
		return err
	}
	srv, err := server.New(ctx, cfg, server.Options{
		Logger: log, Version: version(), WrapListener: extras.wrapListener, TLSObserver: extras.tlsObserver(), Inherited: inherited,
		Gate: extras.gate(),
		// The admin listener, dark ports and packet capture bind, and root is
		// dropped, before any worker process starts.
		BeforeBuild: func(srv *server.Server) error {
			if err := extras.start(ctx, srv); err != nil {
				return err
			}
			if err := prepareTLSStorage(cfg); err != nil {
				return err
			}
			return dropPrivileges(cfg.Server.User)
		},
	})
	if err != nil {
		extras.close()
		return err
	}
	srv.Serve()
	for _, a := range srv.Addrs() {
		log.Info("serving", "addr", "http://"+a.String(), "config", cfg.File, "procs", procs, "socket_activated", len(socks) > 0)
	}
	for _, a := range srv.TLSAddrs() {
		log.Info("serving", "addr", "https://"+a.String())
	}
	if cfg.File == "" {
		// Served by convention: say what was found, for the person who typed it.
		var addrs, tlsAddrs []string
		for _, a := range srv.Addrs() {
			addrs = append(addrs, a.String())
		}
		for _, a := range srv.TLSAddrs() {
			tlsAddrs = append(tlsAddrs, a.String())
		}
		fmt.Fprint(stderr, servedText(cfg, addrs, tlsAddrs))
	}
	if m := srv.Certs(); m != nil && m.RootPath() != "" {
		log.Info("internal CA root: trust it to browse the sites with tls = \"internal\" without warnings (Debian: copy it to /usr/local/share/ca-certificates/gantry.crt and run update-ca-certificates)", "root", m.RootPath())
	}
	notify := func(err error) {
		if err != nil {
			log.Warn("systemd notification", "err", err)
		}
	}
	rep := &statusReporter{srv: srv, last: srv.Status().RequestsTotal, at: time.Now()}
	notify(notifier.Ready(rep.line()))
	go rep.run(ctx, notifier, log)

	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			notify(notifier.Reloading())
			if err := srv.Reload(ctx); err != nil {
				notify(notifier.Ready("reload failed, the previous configuration serves: " + err.Error()))
			} else {
				notify(notifier.Ready(rep.line()))
			}
		case syscall.SIGUSR1:
			if err := srv.ReopenLogs(); err != nil {
				log.Error("reopen logs", "err", err)
			}
		default:
			notify(notifier.Stopping())
			log.Info("shutting down: finishing in-flight requests", "signal", sig.String(), "timeout", cfg.Server.ShutdownTimeout.D())
			sctx, scancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.D())
			if err := srv.Drain(sctx); err != nil {
				log.Warn("shutting down with requests unanswered", "err", err)
			}
			err := srv.Shutdown(sctx)
			extras.close()
			scancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("shutdown: %w", err)
			}
			return nil
		}
	}
	return nil
}

// serveConfig reads -c FILE, or builds the conventions for DIR, then applies flags.
func serveConfig(f serveFlags, pos []string) (*config.Config, []note, error) {
	var cfg *config.Config
	var notes []note
	switch {
	case f.config != "":
		if len(pos) > 0 {
			return nil, nil, fmt.Errorf("gantry serve: give either -c FILE or a directory, not both")
		}
		c, err := config.Load(f.config)
		if err != nil {
			return nil, nil, err
		}
		cfg = c
		if f.wsgi != "" || f.php != "" || len(f.cgi) > 0 {
			return nil, nil, fmt.Errorf("gantry serve: --wsgi, --php and --cgi are for serving a directory; with -c put routes in %s", f.config)
		}
	case len(pos) == 0 && fileExists("gantry.toml") && f.wsgi == "" && f.php == "" && len(f.cgi) == 0:
		c, err := config.Load("gantry.toml")
		if err != nil {
			return nil, nil, err
		}
		cfg = c
	default:
		dir := "."
		if len(pos) == 1 {
			dir = pos[0]
		}
		c, n, err := dirConfig(dir, f)
		if err != nil {
			return nil, nil, err
		}
		cfg, notes = c, n
	}
	if f.listen != "" {
		cfg.Server.Listen = []string{f.listen}
	}
	if f.tlsListen != "" {
		cfg.Server.TLSListen = []string{f.tlsListen}
	}
	if f.tlsStorage != "" {
		cfg.TLS.Storage = f.tlsStorage
	}
	if f.admin != "" {
		cfg.Admin.Listen = f.admin
	}
	if f.accessLog != "" {
		cfg.Server.AccessLog = f.accessLog
	}
	if f.listen != "" || f.admin != "" || f.accessLog != "" || f.tlsListen != "" || f.tlsStorage != "" {
		// flags may have made the config invalid (a public admin address without a
		// password): check again.
		if err := cfg.Complete(); err != nil {
			return nil, nil, err
		}
	}
	return cfg, notes, nil
}

// dirConfig serves dir by convention: its files, cgi-bin/ as CGI, *.php through
// FastCGI with --php, and a WSGI app with --wsgi or Django's layout.
func dirConfig(dir string, f serveFlags) (*config.Config, []note, error) {
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return nil, nil, fmt.Errorf("gantry serve: %s is not a directory: give the folder to serve, or -c FILE", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	site := config.Site{Root: abs}
	if fi, err := os.Stat(filepath.Join(abs, "cgi-bin")); err == nil && fi.IsDir() {
		site.Routes = append(site.Routes, config.Route{Path: "/cgi-bin/", Handler: &cgi.Options{Path: filepath.Join(abs, "cgi-bin")}})
	}
	for _, c := range f.cgi {
		prefix, d, ok := strings.Cut(c, "=")
		if !ok || !strings.HasPrefix(prefix, "/") {
			return nil, nil, fmt.Errorf("gantry serve: --cgi %q: want PREFIX=DIR, like /cgi-bin/=/srv/cgi", c)
		}
		if !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		site.Routes = append(site.Routes, config.Route{Path: prefix, Handler: &cgi.Options{Path: d}})
	}
	routes, notes, err := conventionRoutes(abs, f)
	if err != nil {
		return nil, nil, err
	}
	site.Routes = append(site.Routes, routes...)
	cfg := &config.Config{Sites: []config.Site{site}}
	if f.tlsListen != "" {
		// A site for the loopback names with the internal CA's certificates, and
		// plain HTTP keeps serving it (no redirect): a development server.
		cfg.Sites[0].Hosts = localHosts(f.tlsListen)
		cfg.Sites[0].TLS = config.TLSInternal
		off := false
		cfg.TLS.Redirect = &off
	}
	if err := cfg.Complete(); err != nil {
		return nil, nil, err
	}
	return cfg, notes, nil
}

// localHosts names the loopback addresses and the host of the TLS listener when
// it is a particular one, so that a client dialing it gets a certificate.
func localHosts(tlsListen string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	h, _, err := net.SplitHostPort(tlsListen)
	if err != nil || h == "" {
		return hosts
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
		return hosts
	}
	if !slices.Contains(hosts, h) {
		hosts = append(hosts, h)
	}
	return hosts
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// openErrorLog opens the error log: stderr, or a file. On the journal's stream
// (under systemd) records carry a priority prefix and no timestamp of their own.
func openErrorLog(dest string, stderr io.Writer) (*slog.Logger, func(), error) {
	w, closeFn := stderr, func() {}
	if dest == "" || dest == "stderr" {
		if f, ok := stderr.(*os.File); ok && systemd.JournalStream(f) {
			return slog.New(systemd.NewJournalHandler(f, slog.LevelInfo)), closeFn, nil
		}
	}
	if dest != "" && dest != "stderr" {
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("error log: %w", err)
		}
		w, closeFn = f, func() { f.Close() }
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})), closeFn, nil
}

// startProcs is the runtime's own choice (the CPUs the process may use), taken
// before serve changes it.
var startProcs = runtime.GOMAXPROCS(0)

// serveProcs is how many CPUs gantry's own scheduler uses while serving: all but
// one, unless GOMAXPROCS is set. The workers it runs (Python, PHP, CGI scripts)
// and the kernel's network stack need CPU too, and on a small machine a Go
// scheduler as wide as the machine wakes threads that only find each other's
// crumbs. On 2 cores (bench/, same runs), 1 P against 2: 100 KB files 1.05x
// nginx against 0.76x, hello-world WSGI 1.27x uWSGI against 1.06x, a Django page
// 1.12x against 1.09x, 1 KB files even (1.24x, 1.26x); only hello.php lost
// (1.27x nginx against 1.36x).
//
// An embedded WSGI app is the exception: its Python threads are gantry's own, and
// while one runs Python (a cgo call) it keeps its P until the scheduler takes it
// back, so with one P left the network waits for Python. Such a config keeps every
// CPU (decided at start: a reload does not change it).
func serveProcs(envSet bool, n int, embedded bool) int {
	if envSet || n <= 1 || embedded {
		return n
	}
	return n - 1
}

// embeddedPython reports whether cfg runs a WSGI app in gantry's process.
func embeddedPython(cfg *config.Config) bool {
	for _, s := range cfg.Sites {
		for _, r := range s.Routes {
			if o, ok := r.Handler.(*wsgi.Options); ok && o.Mode == "embedded" {
				return true
			}
		}
	}
	return false
}
