package certs

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/caddyserver/certmagic"

	"gantry/internal/config"
)

// attempt is the last try at obtaining or renewing one name's certificate.
type attempt struct {
	time time.Time
	err  string
}

// CertStatus describes one certificate, for the dashboard and /metrics.
type CertStatus struct {
	Name   string `json:"name"`
	Source string `json:"source"` // "acme", "internal" or "own"
	Issuer string `json:"issuer,omitempty"`
	// NotBefore and NotAfter are zero while no certificate is in hand.
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
}

// Status lists every configured certificate, sorted by name.
func (m *Manager) Status() []CertStatus {
	t := m.table.Load()
	var out []CertStatus
	for _, mode := range []string{config.TLSACME, config.TLSInternal} {
		cache := m.acmeCache
		if mode == config.TLSInternal {
			cache = m.localCache
		}
		for _, n := range t.names(mode) {
			st := CertStatus{Name: n, Source: mode}
			if cache != nil {
				for _, c := range cache.AllMatchingCertificates(n) {
					if c.Leaf != nil && c.Leaf.NotAfter.After(st.NotAfter) {
						st.NotBefore, st.NotAfter, st.Issuer = c.Leaf.NotBefore, c.Leaf.NotAfter, c.Leaf.Issuer.CommonName
					}
				}
			}
			m.mu.Lock()
			if a := m.attempts[n]; a != nil {
				st.LastAttempt, st.LastError = a.time, a.err
			}
			m.mu.Unlock()
			out = append(out, st)
		}
	}
	m.mu.Lock()
	for k, p := range m.pairs {
		st := CertStatus{Name: k.cert, Source: config.TLSOwn, LastAttempt: p.loaded}
		if p.cert != nil && p.cert.Leaf != nil {
			st.NotBefore, st.NotAfter, st.Issuer = p.cert.Leaf.NotBefore, p.cert.Leaf.NotAfter, p.cert.Leaf.Issuer.CommonName
			if names := p.cert.Leaf.DNSNames; len(names) > 0 {
				st.Name = names[0]
			}
		}
		if p.err != nil {
			st.LastError = p.err.Error()
		}
		out = append(out, st)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b CertStatus) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

func (m *Manager) noteAttempt(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.attempts[name]
	if a == nil {
		a = &attempt{}
		m.attempts[name] = a
	}
	a.time = time.Now()
}

func (m *Manager) noteResult(name string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.attempts[name]
	if a == nil {
		return
	}
	a.err = ""
	if err != nil {
		a.err = err.Error()
	}
}

// event records certmagic's own attempts, renewals included.
func (m *Manager) event(_ context.Context, name string, data map[string]any) error {
	id, _ := data["identifier"].(string)
	if id == "" {
		return nil
	}
	switch name {
	case "cert_obtaining":
		m.noteAttempt(id)
	case "cert_obtained":
		m.noteResult(id, nil)
	case "cert_failed":
		err, _ := data["error"].(error)
		if err == nil {
			err = fmt.Errorf("%v", data["error"])
		}
		m.noteResult(id, err)
	}
	return nil
}

var _ certmagic.Issuer = (*localCA)(nil)
