package rulefile

import (
	"errors"
	"strings"
	"testing"
)

type rule struct {
	Name     string `toml:"name"`
	Category string `toml:"category"`
	Ref      string `toml:"ref"`
	Size     int    `toml:"size"`
}

func head(r *rule) (string, string, string) { return r.Name, r.Category, r.Ref }

func TestRead(t *testing.T) {
	const good = "[[rule]]\nname = \"a\"\ncategory = \"scanner\"\nref = \"RFC 1\"\nsize = 2\n"
	tests := []struct {
		name, toml, want string // want: a part of the error, "" for none
	}{
		{"good", good, ""},
		{"unknown key", good + "colour = 1\n", `unknown key "rule.colour"`},
		{"no name", "[[rule]]\ncategory = \"probe\"\nref = \"x\"\n", `rule 1 (""): no name`},
		{"name twice", good + good, `rule 2 ("a"): name used twice`},
		{"no ref", "[[rule]]\nname = \"a\"\ncategory = \"probe\"\n", "no ref"},
		{"bad category", "[[rule]]\nname = \"a\"\ncategory = \"evil\"\nref = \"x\"\n", `category "evil": want exploit, scanner or probe`},
		{"the kind's own check", "[[rule]]\nname = \"a\"\ncategory = \"probe\"\nref = \"x\"\nsize = -1\n", `rule 1 ("a"): size -1`},
		{"not TOML", "[[rule\n", "test rules:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := Read("test rules", []byte(tc.toml), head, func(r *rule) error {
				if r.Size < 0 {
					return errors.New("size -1")
				}
				return nil
			})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "" && (len(rules) != 1 || rules[0].Size != 2):
				t.Fatalf("rules %+v", rules)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}

func TestRank(t *testing.T) {
	if Rank(Exploit) != 0 || Rank(Scanner) != 1 || Rank(Probe) != 2 || Rank("other") != -1 {
		t.Error("categories out of their order of precedence")
	}
}
