package httpsensor

import (
	"bytes"
	_ "embed"
	"fmt"
	"slices"
	"time"

	"github.com/BurntSushi/toml"
)

// Categories of unsolicited requests, in order of precedence.
const (
	Exploit = "exploit"
	Scanner = "scanner"
	Probe   = "probe"
)

// Categories lists the categories in order of precedence.
var Categories = []string{Exploit, Scanner, Probe}

func categoryRank(c string) int { return slices.Index(Categories, c) }

// Rule is one entry of the rule file; see rules.toml for the meaning of each field.
type Rule struct {
	Name        string   `toml:"name" json:"name"`
	Category    string   `toml:"category" json:"category"`
	Field       string   `toml:"field" json:"field"`
	Contains    []string `toml:"contains" json:"contains,omitempty"`
	Method      string   `toml:"method" json:"method,omitempty"`
	Check       string   `toml:"check" json:"check,omitempty"`
	WhenMissing bool     `toml:"when_missing" json:"when_missing,omitempty"`
	Threshold   int      `toml:"threshold" json:"threshold,omitempty"`
	Window      string   `toml:"window" json:"window,omitempty"`
	Ref         string   `toml:"ref" json:"ref"`

	window time.Duration
}

//go:embed rules.toml
var defaultRules []byte

// DefaultRules returns the rules built into gantry.
func DefaultRules() []Rule {
	r, err := ParseRules(defaultRules)
	if err != nil {
		panic("httpsensor: built-in rules.toml: " + err.Error()) // caught by the package tests
	}
	return r
}

var checks = map[string][]string{
	"host":   {"unknown", "ip-literal"},
	"conn":   {"tls", "ssh", "binary"},
	"status": {"404-burst", "rate-limited"},
	"tls":    {"no-sni", "unknown-sni", "handshake-failed"},
}

// ParseRules reads a rule file. Unknown keys, unknown fields and rules without a
// name, category or reference are errors: a rule nobody can look up is no rule.
func ParseRules(data []byte) ([]Rule, error) {
	var f struct {
		Rule []Rule `toml:"rule"`
	}
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&f)
	if err != nil {
		return nil, fmt.Errorf("httpsensor rules: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("httpsensor rules: unknown key %q", und[0].String())
	}
	seen := map[string]bool{}
	for i := range f.Rule {
		r := &f.Rule[i]
		bad := func(format string, a ...any) error {
			return fmt.Errorf("httpsensor rules: rule %d (%q): %s", i+1, r.Name, fmt.Sprintf(format, a...))
		}
		switch {
		case r.Name == "":
			return nil, bad("no name")
		case seen[r.Name]:
			return nil, bad("name used twice")
		case r.Ref == "":
			return nil, bad("no ref: say where the pattern comes from")
		case categoryRank(r.Category) < 0:
			return nil, bad("category %q: want exploit, scanner or probe", r.Category)
		}
		seen[r.Name] = true
		switch r.Field {
		case "uri", "any", "user_agent":
			if len(r.Contains) == 0 {
				return nil, bad("field %s needs contains", r.Field)
			}
			for _, c := range r.Contains {
				if c == "" {
					return nil, bad("empty pattern")
				}
			}
		case "method":
			if r.Method == "" {
				return nil, bad("field method needs method")
			}
		case "host", "conn", "status", "tls":
			if !slices.Contains(checks[r.Field], r.Check) {
				return nil, bad("field %s: check %q: want one of %v", r.Field, r.Check, checks[r.Field])
			}
			if r.Check == "404-burst" {
				d, err := time.ParseDuration(r.Window)
				if err != nil || d <= 0 || r.Threshold < 2 || r.Threshold > 256 {
					return nil, bad("404-burst needs threshold 2..256 and a window like \"60s\"")
				}
				r.window = d
			}
		default:
			return nil, bad("field %q: want uri, any, user_agent, method, host, conn, status or tls", r.Field)
		}
	}
	// Rules are kept in order of precedence, so the first match is the verdict.
	slices.SortStableFunc(f.Rule, func(a, b Rule) int { return categoryRank(a.Category) - categoryRank(b.Category) })
	return f.Rule, nil
}
