package basicauth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	aliceLine = "alice:$2y$05$yhrIO6SN6ojQX/ZSTz6gjOCfQ6jEiFE7OuB0jCQcfqZV8RanAQsdO"
	bobLine   = "bob:$argon2id$v=19$m=19456,t=2,p=1$iXx5FIqXvm9MeeIUMJ75hQ$da1viPt28plhc2b0FmyYRv09xTwLAcaETKzBDyKkBAk"
)

func TestParseHtpasswd(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		users   []string // accepted, in any order
		errLine int      // the line of the one error; 0 for none
		errHas  string
	}{
		{"bcrypt and argon2id", aliceLine + "\n" + bobLine + "\n", []string{"alice", "bob"}, 0, ""},
		{"comments, blank lines, CRLF and trailing spaces", "# users\n\n" + aliceLine + "  \r\n   # indented comment\n", []string{"alice"}, 0, ""},
		{"no final newline", aliceLine, []string{"alice"}, 0, ""},
		{"apr1 refused as weak", aliceLine + "\nold:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n", []string{"alice"}, 2, `user "old": MD5-crypt ($apr1$) is weak`},
		{"SHA-1 refused as weak", "sha:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", nil, 1, "SHA-1 ({SHA}) is weak"},
		{"SHA-512-crypt refused", "s:$6$salt$abc\n", nil, 1, "SHA-512-crypt"},
		{"plain text refused", "plain:hunter2\n", nil, 1, "plain text or DES crypt"},
		{"DES crypt refused", "des:rOZ8Tv3vj1/Ho\n", nil, 1, "plain text or DES crypt"},
		{"argon2i refused", "i:$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n", nil, 1, "gantry takes argon2id"},
		{"a broken bcrypt hash", "b:$2y$05$short\n", nil, 1, `user "b": not a bcrypt`},
		{"a bcrypt cost that would burn a core per request", "slow:$2y$16$yhrIO6SN6ojQX/ZSTz6gjOCfQ6jEiFE7OuB0jCQcfqZV8RanAQsdO\n", nil, 1, "too costly"},
		{"no colon", "alice\n", nil, 1, `not "user:hash"`},
		{"no user name", ":$2y$05$yhrIO6SN6ojQX/ZSTz6gjOCfQ6jEiFE7OuB0jCQcfqZV8RanAQsdO\n", nil, 1, "no user name"},
		{"a control character in the name", "al\x1bice:$2y$05$yhrIO6SN6ojQX/ZSTz6gjOCfQ6jEiFE7OuB0jCQcfqZV8RanAQsdO\n", nil, 1, "control character"},
		{"invalid UTF-8 in the name", "al\xffice:$2y$05$yhrIO6SN6ojQX/ZSTz6gjOCfQ6jEiFE7OuB0jCQcfqZV8RanAQsdO\n", nil, 1, "not UTF-8"},
		{"a user twice", aliceLine + "\n\n" + aliceLine + "\n", []string{"alice"}, 3, `user "alice" is also on line 1`},
		{"a line too long", aliceLine + "\n" + strings.Repeat("x", 70000) + "\n", []string{"alice"}, 2, "too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, errs := parseHtpasswd(strings.NewReader(tc.text))
			if len(u) != len(tc.users) {
				t.Errorf("users %v, want %v", keys(u), tc.users)
			}
			for _, name := range tc.users {
				if u[name] == nil {
					t.Errorf("user %q missing", name)
				}
			}
			if tc.errLine == 0 {
				if len(errs) > 0 {
					t.Fatalf("errors %v", errs)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("errors %v, want one on line %d", errs, tc.errLine)
			}
			le, ok := errs[0].(*lineError)
			if !ok || le.line != tc.errLine || !strings.Contains(le.Error(), tc.errHas) {
				t.Fatalf("error %q, want line %d with %q", errs[0], tc.errLine, tc.errHas)
			}
			if strings.Contains(le.Error(), "$2y$05$") || strings.Contains(le.Error(), "W6ph5") {
				t.Errorf("the error shows the hash: %q", le)
			}
		})
	}
}

func keys(u users) []string {
	var out []string
	for k := range u {
		out = append(out, k)
	}
	return out
}

// The testdata file's users verify with their passwords, whatever the kind.
func TestTestdataFile(t *testing.T) {
	u, errs := loadHtpasswd("testdata/htpasswd")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for user, pw := range map[string]string{"alice": "alice-secret", "bob": "bob secret ✓", "carol": "carol:colon"} {
		if !u[user].Verify(pw) || u[user].Verify(pw+"x") {
			t.Errorf("%s: verifies wrongly", user)
		}
	}
}

func TestLoadHtpasswd(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("# nobody yet\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "nope"), "no such file or directory: create it with `gantry hash-password --htpasswd USER >> "},
		{"a directory", dir, "not a regular file"},
		{"no users", empty, "no users"},
	}
	for _, tc := range tests {
		_, errs := loadHtpasswd(tc.path)
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, errs, tc.want)
		}
	}
}

// Whatever the file holds, parsing returns (no panic, no hang), an accepted user
// has a printable name and a hash, and every error names a line of the input.
func FuzzParseHtpasswd(f *testing.F) {
	f.Add(aliceLine + "\n" + bobLine + "\n")                      // bcrypt and argon2id
	f.Add("# c\n\nold:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\r\n") // comment, blank, weak, CRLF
	f.Add("a:b:c\n:x\nnocolon\n")                                 // colons in odd places
	f.Add("x:$argon2id$v=19$m=99999999,t=2,p=1$$\n")              // absurd argon2 memory
	f.Fuzz(func(t *testing.T, text string) {
		u, errs := parseHtpasswd(strings.NewReader(text))
		lines := strings.Count(text, "\n") + 1
		for name, h := range u {
			if name == "" || !printable(name) || h == nil || h.Heavy() {
				t.Fatalf("accepted user %q with hash %v", name, h)
			}
		}
		for _, err := range errs {
			if le, ok := err.(*lineError); !ok || le.line < 1 || le.line > lines+1 {
				t.Fatalf("error %v names no line of the %d", err, lines)
			}
		}
	})
}
