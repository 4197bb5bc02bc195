package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"gantry/internal/config"
)

// pairKey names an own certificate by its files.
type pairKey struct{ cert, key string }

// ownPair is a certificate a person supplied with tls_cert and tls_key.
type ownPair struct {
	key    pairKey
	cert   *tls.Certificate
	loaded time.Time
	err    error // of the last load that failed and left cert as it was
}

// loadPair reads and checks a pair: the key must match the certificate, and the
// certificate must be valid now.
func loadPair(k pairKey) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		return nil, fmt.Errorf("tls_cert %s, tls_key %s: %w", k.cert, k.key, err)
	}
	leaf := c.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls_cert %s: %w", k.cert, err)
		}
		c.Leaf = leaf
	}
	now := time.Now()
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("tls_cert %s expired on %s: renew it", k.cert, leaf.NotAfter.Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("tls_cert %s is not valid before %s", k.cert, leaf.NotBefore.Format(time.RFC3339))
	}
	return &c, nil
}

// loadPairs loads every pair cfg names. A pair that fails keeps prev's
// certificate for the same files when there is one (a reload with a broken
// file keeps serving the old certificate); the failures are returned.
func loadPairs(cfg *config.Config, prev map[pairKey]*ownPair) (map[pairKey]*ownPair, []error) {
	out := map[pairKey]*ownPair{}
	var errs []error
	for i := range cfg.Sites {
		s := &cfg.Sites[i]
		if s.TLSCert == "" {
			continue
		}
		k := pairKey{s.TLSCert, s.TLSKey}
		if _, done := out[k]; done {
			continue
		}
		c, err := loadPair(k)
		if err == nil {
			out[k] = &ownPair{key: k, cert: c, loaded: time.Now()}
			continue
		}
		errs = append(errs, err)
		if p, ok := prev[k]; ok && p.cert != nil {
			out[k] = &ownPair{key: k, cert: p.cert, loaded: p.loaded, err: err}
		}
	}
	return out, errs
}
