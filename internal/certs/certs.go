// Package certs gives gantry's HTTPS listeners their certificates: from an ACME
// certificate authority (Let's Encrypt by default, through certmagic), from
// gantry's own local CA (tls = "internal"), or from a site's own files (tls_cert
// and tls_key). One Manager serves the whole server and follows its reloads.
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"

	"gantry/internal/config"
)

// Options tune a Manager; the zero value is right for production.
type Options struct {
	Logger *slog.Logger
	// HTTPAddr and TLSAddr are addresses of gantry's own plain and TLS listeners:
	// certmagic answers ACME challenges through them instead of binding its own.
	// An empty HTTPAddr turns the HTTP-01 challenge off.
	HTTPAddr, TLSAddr string
	// NoHTTPChallenge and NoTLSALPNChallenge leave one ACME challenge type out:
	// the CA then has to validate the other (tests pin the one they check).
	NoHTTPChallenge, NoTLSALPNChallenge bool
	// RetryBase is the wait after a first failed issuance, doubled after each
	// failure up to RetryMax. Defaults 1m and 1h: Let's Encrypt counts failed
	// validations per hour.
	RetryBase, RetryMax time.Duration
	// LeafLifetime is how long the internal CA's leaves are valid. Default 24h.
	LeafLifetime time.Duration
	// RenewalWindowRatio and RenewCheckInterval are certmagic's (tests shorten them).
	RenewalWindowRatio float64
	RenewCheckInterval time.Duration
}

// Manager chooses, obtains, renews and serves certificates.
type Manager struct {
	log  *slog.Logger
	opts Options
	cfg  *config.Config // the one started with; [tls] changes take a restart

	table atomic.Pointer[table]
	pairs map[pairKey]*ownPair // guarded by mu

	local      *certmagic.Config
	localCache *certmagic.Cache
	ca         *localCA

	acme       *certmagic.Config
	acmeCache  *certmagic.Cache
	acmeIssuer *certmagic.ACMEIssuer

	mu       sync.Mutex
	managed  map[string]bool     // names handed to certmagic
	attempts map[string]*attempt // last issuance or renewal attempt per name
	ctx      context.Context     // ends at Stop
	stop     context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// New builds a Manager for cfg: it loads the own pairs (a bad one is an error)
// and the internal CA's root (made when missing), but asks no CA for anything
// until Start.
func New(cfg *config.Config, opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = time.Minute
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = time.Hour
	}
	if opts.LeafLifetime <= 0 {
		opts.LeafLifetime = 24 * time.Hour
	}
	m := &Manager{log: opts.Logger, opts: opts, cfg: cfg, managed: map[string]bool{}, attempts: map[string]*attempt{}}
	m.ctx, m.stop = context.WithCancel(context.Background())
	pairs, errs := loadPairs(cfg, nil)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	m.pairs = pairs
	t := buildTable(cfg, pairs)
	m.table.Store(t)
	if err := checkStorage(cfg.TLS.Storage); err != nil {
		return nil, err
	}
	zl := zapLogger(m.log.With("component", "certs"))
	storage := &certmagic.FileStorage{Path: cfg.TLS.Storage}
	if len(t.names(config.TLSInternal)) > 0 {
		ca, err := loadOrCreateCA(cfg.TLS.Storage, opts.LeafLifetime, func(n string) bool {
			return m.table.Load().has(n, config.TLSInternal)
		})
		if err != nil {
			return nil, err
		}
		m.ca = ca
		m.localCache = certmagic.NewCache(certmagic.CacheOptions{
			GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.local, nil },
			RenewCheckInterval: opts.RenewCheckInterval, Logger: zl,
		})
		m.local = certmagic.New(m.localCache, certmagic.Config{
			Storage: storage, Logger: zl, OnEvent: m.event, Issuers: []certmagic.Issuer{ca},
			RenewalWindowRatio: opts.RenewalWindowRatio,
		})
	}
	if err := m.setupACME(storage, zl); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

// Start loads the certificates already in storage, so that a restarted gantry
// fails no handshake while it reads them, then obtains the others in the
// background: a site is served over HTTP meanwhile, and over HTTPS as soon as its
// certificate is in hand. Call it before the TLS listeners serve.
func (m *Manager) Start() {
	t := m.table.Load()
	m.loadStored(t)
	m.manage(t)
}

// loadStoredTimeout bounds loadStored: stapling OCSP to a stored certificate may
// ask its CA, and the listeners wait for it.
const loadStoredTimeout = 10 * time.Second

// loadStored caches the stored certificates of t's names; a name with none, or
// one that does not load, is left to manage. So is one due for renewal: certmagic
// renews a certificate at once only when managing starts without it in the cache
// (cached, it would wait for the next maintenance round), and serves the old one
// meanwhile.
func (m *Manager) loadStored(t *table) {
	ctx, cancel := context.WithTimeout(m.ctx, loadStoredTimeout)
	defer cancel()
	for _, mode := range []string{config.TLSInternal, config.TLSACME} {
		cfg, cache := m.local, m.localCache
		if mode == config.TLSACME {
			cfg, cache = m.acme, m.acmeCache
		}
		if cfg == nil {
			continue
		}
		for _, n := range t.names(mode) {
			cert, err := cfg.CacheManagedCertificate(ctx, n)
			if err != nil {
				continue
			}
			if cert.NeedsRenewal(cfg) {
				cache.RemoveManaged([]certmagic.SubjectIssuer{{Subject: n}})
				continue
			}
			m.log.Debug("certificate loaded from storage", "name", n)
		}
	}
}

// manage hands the names of t that certmagic does not manage yet to it.
func (m *Manager) manage(t *table) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mode := range []string{config.TLSInternal, config.TLSACME} {
		cfg := m.local
		if mode == config.TLSACME {
			cfg = m.acme
		}
		var names []string
		for _, n := range t.names(mode) {
			if !m.managed[n] {
				m.managed[n] = true
				names = append(names, n)
			}
		}
		if len(names) == 0 || cfg == nil {
			continue
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.obtain(cfg, names)
		}()
	}
}

// obtain gets a certificate for each name (from storage when one is there),
// retrying the failures with exponential backoff until they succeed or Stop.
// Once a name is managed, certmagic renews it and staples OCSP itself.
func (m *Manager) obtain(cfg *certmagic.Config, names []string) {
	delay := m.opts.RetryBase
	for {
		var failed []string
		for _, n := range names {
			m.noteAttempt(n)
			err := cfg.ManageSync(m.ctx, []string{n})
			m.noteResult(n, err)
			if err != nil {
				if m.ctx.Err() != nil {
					return
				}
				failed = append(failed, n)
				m.log.Error("certificate not obtained; HTTPS for this name waits, HTTP keeps serving", "name", n, "retry_in", delay, "err", err)
			}
		}
		if len(failed) == 0 {
			return
		}
		names = failed
		select {
		case <-m.ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, m.opts.RetryMax)
	}
}

// Update follows a reload: own pairs are read again (a bad one keeps the
// previous certificate and is logged) and new hosts are obtained. Hosts that
// are gone are no longer maintained. [tls] changes take a restart.
func (m *Manager) Update(cfg *config.Config) {
	m.mu.Lock()
	pairs, errs := loadPairs(cfg, m.pairs)
	for _, err := range errs {
		m.log.Error("reload: own certificate not loaded; the previous one (if any) keeps serving", "err", err)
	}
	m.pairs = pairs
	t := buildTable(cfg, pairs)
	m.table.Store(t)
	var gone []certmagic.SubjectIssuer
	for n := range m.managed {
		if !t.has(n, config.TLSACME) && !t.has(n, config.TLSInternal) {
			delete(m.managed, n)
			delete(m.attempts, n)
			gone = append(gone, certmagic.SubjectIssuer{Subject: n})
		}
	}
	m.mu.Unlock()
	for _, c := range []*certmagic.Cache{m.localCache, m.acmeCache} {
		if c != nil && len(gone) > 0 {
			c.RemoveManaged(gone)
		}
	}
	if t.names(config.TLSInternal) != nil && m.local == nil {
		m.log.Warn("reload: a site now uses tls = \"internal\"; restart gantry to start the internal CA")
	}
	m.manage(t)
}

// Stop ends issuance and certificate maintenance.
// It may be called more than once.
func (m *Manager) Stop() {
	m.stopOnce.Do(func() {
		m.stop()
		m.wg.Wait()
		for _, c := range []*certmagic.Cache{m.localCache, m.acmeCache} {
			if c != nil {
				c.Stop()
			}
		}
	})
}

// RootPath is the internal CA's root certificate, or "" when no site uses it.
func (m *Manager) RootPath() string {
	if m.ca == nil {
		return ""
	}
	return RootPath(m.cfg.TLS.Storage)
}

// TLSConfig is the configuration of the HTTPS listeners: TLS 1.2 at least, Go's
// cipher suites and curve preferences, HTTP/2 and HTTP/1.1 by ALPN, and the
// ACME TLS-ALPN-01 challenge.
func (m *Manager) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1", acmeTLS1},
		GetCertificate: m.GetCertificate,
	}
}

const acmeTLS1 = "acme-tls/1"

// GetCertificate picks the certificate for a handshake by its server name; a
// client that sends none (one dialing an IP address) gets the certificate of
// the site whose hosts name the address it connected to.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if m.acme != nil && len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeTLS1 {
		return m.acme.GetCertificate(hello)
	}
	name := normalName(hello.ServerName)
	if name == "" && hello.Conn != nil {
		// HTTP/3 connections (quic-go) show the UDP socket's address.
		switch a := hello.Conn.LocalAddr().(type) {
		case *net.TCPAddr:
			name = a.AddrPort().Addr().Unmap().String()
		case *net.UDPAddr:
			name = a.AddrPort().Addr().Unmap().String()
		}
	}
	e := m.table.Load().lookup(name)
	if e == nil {
		return nil, fmt.Errorf("no site is named %q", name)
	}
	var cfg *certmagic.Config
	switch e.mode {
	case config.TLSOwn:
		if e.own == nil || e.own.cert == nil {
			return nil, fmt.Errorf("site %q: its own certificate did not load", name)
		}
		return e.own.cert, nil
	case config.TLSACME:
		cfg = m.acme
	case config.TLSInternal:
		cfg = m.local
	}
	if cfg == nil {
		return nil, fmt.Errorf("site %q is served over HTTP only", name)
	}
	if hello.ServerName == "" {
		h := *hello
		h.ServerName = name
		hello = &h
	}
	return cfg.GetCertificate(hello)
}

// Named reports whether host is one a site names (not only the default site's).
func (m *Manager) Named(host string) bool {
	t := m.table.Load()
	e := t.lookup(normalName(host))
	return e != nil && e != t.def
}

// HasCert reports whether a request for host would find a certificate now:
// plain HTTP is redirected to https only then.
func (m *Manager) HasCert(host string) bool {
	name := normalName(host)
	e := m.table.Load().lookup(name)
	if e == nil {
		return false
	}
	var cache *certmagic.Cache
	switch e.mode {
	case config.TLSOwn:
		return e.own != nil && e.own.cert != nil
	case config.TLSACME:
		cache = m.acmeCache
	case config.TLSInternal:
		cache = m.localCache
	}
	if cache == nil {
		return false
	}
	for _, c := range cache.AllMatchingCertificates(name) {
		if c.Leaf != nil && time.Now().Before(c.Leaf.NotAfter) {
			return true
		}
	}
	return false
}

// rootPool reads a PEM file of roots ([tls] ca_root).
func rootPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("[tls] ca_root: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("[tls] ca_root %s: no PEM certificate in it", file)
	}
	return pool, nil
}

func hostPort(addr string) (string, int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0
	}
	var n int
	fmt.Sscanf(p, "%d", &n)
	return strings.Trim(h, "[]"), n
}
