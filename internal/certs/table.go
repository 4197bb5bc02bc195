package certs

import (
	"strings"

	"gantry/internal/config"
)

// entry is where one configured host's certificate comes from.
type entry struct {
	mode string   // config.TLSOwn, TLSACME, TLSInternal or TLSOff
	own  *ownPair // for TLSOwn
	name string   // the host as certmagic manages it (for TLSACME and TLSInternal)
}

// table maps server names to entries: exact names, then "*.x" wildcards (one
// label), then the default site (a site without hosts, which can only have its
// own certificate).
type table struct {
	exact map[string]*entry
	wild  map[string]*entry // by the part after "*."
	def   *entry
}

// normalName lowercases a host and drops a trailing dot and IPv6 brackets.
func normalName(h string) string {
	return ipName(strings.TrimSuffix(strings.ToLower(h), "."))
}

// buildTable makes the table for cfg; own pairs come from pairs, by file names.
func buildTable(cfg *config.Config, pairs map[pairKey]*ownPair) *table {
	t := &table{exact: map[string]*entry{}, wild: map[string]*entry{}}
	for i := range cfg.Sites {
		s := &cfg.Sites[i]
		if len(s.Hosts) == 0 {
			if s.TLSCert != "" {
				t.def = &entry{mode: config.TLSOwn, own: pairs[pairKey{s.TLSCert, s.TLSKey}]}
			}
			continue
		}
		for _, h := range s.Hosts {
			n := normalName(h)
			e := &entry{mode: s.TLSFor(h), name: n}
			if e.mode == config.TLSOwn {
				e.own = pairs[pairKey{s.TLSCert, s.TLSKey}]
			}
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				t.wild[rest] = e
			} else {
				t.exact[n] = e
			}
		}
	}
	return t
}

// lookup finds the entry for a server name (already normalName'd).
func (t *table) lookup(name string) *entry {
	if e, ok := t.exact[name]; ok {
		return e
	}
	if _, rest, ok := strings.Cut(name, "."); ok {
		if e, ok := t.wild[rest]; ok {
			return e
		}
	}
	return t.def
}

// names lists the hosts whose certificates come from mode, as certmagic names them.
func (t *table) names(mode string) []string {
	var out []string
	for _, m := range []map[string]*entry{t.exact, t.wild} {
		for _, e := range m {
			if e.mode == mode {
				out = append(out, e.name)
			}
		}
	}
	return out
}

// has reports whether name is a host whose certificate comes from mode.
func (t *table) has(name, mode string) bool {
	n := normalName(name)
	if e, ok := t.exact[n]; ok {
		return e.mode == mode
	}
	if rest, ok := strings.CutPrefix(n, "*."); ok {
		e, ok := t.wild[rest]
		return ok && e.mode == mode
	}
	return false
}
