package httpsensor

import (
	_ "embed"
	"fmt"
	"slices"
	"time"

	"gantry/internal/telescope/rulefile"
)

// Categories of unsolicited requests, in order of precedence.
const (
	Exploit = rulefile.Exploit
	Scanner = rulefile.Scanner
	Probe   = rulefile.Probe
)

// Categories lists the categories in order of precedence.
var Categories = rulefile.Categories

func categoryRank(c string) int { return rulefile.Rank(c) }

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
	rules, err := rulefile.Read("httpsensor rules", data,
		func(r *Rule) (string, string, string) { return r.Name, r.Category, r.Ref }, checkRule)
	if err != nil {
		return nil, err
	}
	// Rules are kept in order of precedence, so the first match is the verdict.
	slices.SortStableFunc(rules, func(a, b Rule) int { return categoryRank(a.Category) - categoryRank(b.Category) })
	return rules, nil
}

// checkRule checks what a rule's field asks of it.
func checkRule(r *Rule) error {
	switch r.Field {
	case "uri", "any", "user_agent":
		if len(r.Contains) == 0 {
			return fmt.Errorf("field %s needs contains", r.Field)
		}
		for _, c := range r.Contains {
			if c == "" {
				return fmt.Errorf("empty pattern")
			}
		}
	case "method":
		if r.Method == "" {
			return fmt.Errorf("field method needs method")
		}
	case "host", "conn", "status", "tls":
		if !slices.Contains(checks[r.Field], r.Check) {
			return fmt.Errorf("field %s: check %q: want one of %v", r.Field, r.Check, checks[r.Field])
		}
		if r.Check == "404-burst" {
			d, err := time.ParseDuration(r.Window)
			if err != nil || d <= 0 || r.Threshold < 2 || r.Threshold > 256 {
				return fmt.Errorf("404-burst needs threshold 2..256 and a window like \"60s\"")
			}
			r.window = d
		}
	default:
		return fmt.Errorf("field %q: want uri, any, user_agent, method, host, conn, status or tls", r.Field)
	}
	return nil
}
