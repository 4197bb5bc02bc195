package certs

import (
	"net/http"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"gantry/internal/config"
)

// setupACME makes the ACME side when a site uses it. certmagic would bind its
// own challenge listeners on ports 80 and 443 when nobody listens there; given
// gantry's own addresses it finds them taken and answers through gantry's
// listeners instead (HandleHTTPChallenge and GetCertificate).
func (m *Manager) setupACME(storage certmagic.Storage, zl *zap.Logger) error {
	if len(m.table.Load().names(config.TLSACME)) == 0 {
		return nil
	}
	t := m.cfg.TLS
	tmpl := certmagic.ACMEIssuer{CA: t.ACMEDirectory(), Email: t.Email, Agreed: true, Logger: zl}
	if t.CARoot != "" {
		pool, err := rootPool(t.CARoot)
		if err != nil {
			return err
		}
		tmpl.TrustedRoots = pool
	}
	if host, port := hostPort(m.opts.HTTPAddr); port > 0 && !m.opts.NoHTTPChallenge {
		tmpl.ListenHost, tmpl.AltHTTPPort = host, port
	} else {
		tmpl.DisableHTTPChallenge = true
	}
	if host, port := hostPort(m.opts.TLSAddr); port > 0 && !m.opts.NoTLSALPNChallenge {
		if tmpl.ListenHost == "" || tmpl.ListenHost == host {
			tmpl.ListenHost, tmpl.AltTLSALPNPort = host, port
		}
	} else {
		tmpl.DisableTLSALPNChallenge = true
	}
	m.acmeCache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.acme, nil },
		RenewCheckInterval: m.opts.RenewCheckInterval, Logger: zl,
	})
	m.acme = certmagic.New(m.acmeCache, certmagic.Config{
		Storage: storage, Logger: zl, OnEvent: m.event, RenewalWindowRatio: m.opts.RenewalWindowRatio,
	})
	m.acmeIssuer = certmagic.NewACMEIssuer(m.acme, tmpl)
	m.acme.Issuers = []certmagic.Issuer{m.acmeIssuer}
	return nil
}

// HandleHTTPChallenge answers an ACME HTTP-01 challenge request on a plain
// listener and reports whether r was one.
func (m *Manager) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	if m.acmeIssuer == nil || !certmagic.LooksLikeHTTPChallenge(r) {
		return false
	}
	return m.acmeIssuer.HandleHTTPChallenge(w, r)
}
