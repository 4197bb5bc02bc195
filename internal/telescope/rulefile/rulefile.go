// Package rulefile reads the telescope's rule files — the HTTP sensor's rules.toml
// and the dark ports' probes.toml — the same way: a TOML array of [[rule]] tables,
// unknown keys refused, and every rule with a unique name, a category and a
// reference to where its pattern comes from.
package rulefile

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/BurntSushi/toml"
)

// Categories of unsolicited traffic, in order of precedence.
const (
	Exploit = "exploit"
	Scanner = "scanner"
	Probe   = "probe"
)

// Categories lists the categories in order of precedence.
var Categories = []string{Exploit, Scanner, Probe}

// Rank is the precedence of category c (0 first), or -1 for no category.
func Rank(c string) int { return slices.Index(Categories, c) }

// Read decodes the rules in data. head gives a rule's name, category and
// reference, which Read checks; check, called next for each rule in file order,
// checks (and may complete) the rest, returning what is wrong in words. what names
// the file in errors ("httpsensor rules").
func Read[T any](what string, data []byte, head func(*T) (name, category, ref string), check func(*T) error) ([]T, error) {
	var f struct {
		Rule []T `toml:"rule"`
	}
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%s: unknown key %q", what, und[0].String())
	}
	seen := map[string]bool{}
	for i := range f.Rule {
		r := &f.Rule[i]
		name, category, ref := head(r)
		var problem error
		switch {
		case name == "":
			problem = fmt.Errorf("no name")
		case seen[name]:
			problem = fmt.Errorf("name used twice")
		case ref == "":
			problem = fmt.Errorf("no ref: say where the pattern comes from")
		case Rank(category) < 0:
			problem = fmt.Errorf("category %q: want exploit, scanner or probe", category)
		default:
			problem = check(r)
		}
		if problem != nil {
			return nil, fmt.Errorf("%s: rule %d (%q): %w", what, i+1, name, problem)
		}
		seen[name] = true
	}
	return f.Rule, nil
}
