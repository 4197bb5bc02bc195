package httpsensor

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// naiveMatches lists, for every position of str, the patterns that end there
// (ASCII case folded), as the matcher must report them.
func naiveMatches(patterns []string, str string) []string {
	var got []string
	for i := 1; i <= len(str); i++ {
		var at []int
		for pi, p := range patterns {
			if len(p) <= i && foldASCII(str[i-len(p):i]) == foldASCII(p) {
				at = append(at, pi)
			}
		}
		if len(at) > 0 {
			got = append(got, fmt.Sprint(i, at))
		}
	}
	return got
}

func foldASCII(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] = lowerASCII(b[i])
	}
	return string(b)
}

func TestMatcher(t *testing.T) {
	for _, tc := range []struct {
		name     string
		patterns []string
		input    string
	}{
		{"one pattern", []string{"/.env"}, "GET /.env HTTP/1.1"},
		{"case folded", []string{"wp-LOGIN"}, "/WP-login.php /wp-login"},
		{"nested and overlapping", []string{"he", "she", "his", "hers"}, "ushers ahishers"},
		{"a pattern inside another", []string{"abcd", "bc", "c"}, "xabcdabc"},
		{"duplicates", []string{"ab", "ab", "AB"}, "zabab"},
		{"bytes no pattern uses", []string{"ab"}, "\x00\xffa\x80b ab"},
		{"no patterns", nil, "anything"},
		{"empty input", []string{"a"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := matcherRun(tc.patterns, tc.input), naiveMatches(tc.patterns, tc.input); !slices.Equal(got, want) {
				t.Errorf("matches %q, want %q", got, want)
			}
		})
	}
	t.Run("random", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		word := func(n int) string {
			b := make([]byte, 1+r.IntN(n))
			for i := range b {
				b[i] = "abcABC/."[r.IntN(8)]
			}
			return string(b)
		}
		for range 200 {
			patterns := make([]string, r.IntN(12))
			for i := range patterns {
				patterns[i] = word(5)
			}
			input := word(60)
			if got, want := matcherRun(patterns, input), naiveMatches(patterns, input); !slices.Equal(got, want) {
				t.Fatalf("patterns %q in %q: matches %q, want %q", patterns, input, got, want)
			}
		}
	})
}

// matcherRun reports the matcher's matches as naiveMatches does: it walks the
// table itself for the positions, and checks that run reports the same.
func matcherRun(patterns []string, input string) []string {
	m := newMatcher(patterns)
	sorted := func(out []int16) []int {
		at := make([]int, len(out))
		for j, p := range out {
			at[j] = int(p)
		}
		slices.Sort(at)
		return at
	}
	var got, sets, fromRun []string
	state := m.start
	for pos := 0; pos < len(input); pos++ {
		state = m.next[state*uint32(m.classes)+uint32(m.class[input[pos]])]
		if state >= m.firstOut {
			got = append(got, fmt.Sprint(pos+1, sorted(m.out[state])))
			sets = append(sets, fmt.Sprint(sorted(m.out[state])))
		}
	}
	m.run(input, func(out []int16) { fromRun = append(fromRun, fmt.Sprint(sorted(out))) })
	if !slices.Equal(sets, fromRun) {
		return append(got, fmt.Sprintf("run reported %q", fromRun))
	}
	return got
}

// The matcher finds what a naive search finds, for any patterns and input.
func FuzzMatcher(f *testing.F) {
	f.Add("he\nshe\nhis\nhers", "ushers") // the classic Aho-Corasick example
	f.Add("/.ENV\n.env", "GET /.env")     // case folding, a pattern inside another
	f.Add("a\na\naa", "aaaa")             // duplicates and self-overlap
	f.Add("\x00\xff", "\x00\xff\x00")     // bytes outside ASCII
	f.Fuzz(func(t *testing.T, list, input string) {
		var patterns []string
		for p := range strings.SplitSeq(list, "\n") {
			if p != "" && len(patterns) < 64 && len(p) < 64 {
				patterns = append(patterns, p)
			}
		}
		if len(input) > 1024 {
			input = input[:1024]
		}
		if got, want := matcherRun(patterns, input), naiveMatches(patterns, input); !slices.Equal(got, want) {
			t.Fatalf("patterns %q in %q: matches %q, want %q", patterns, input, got, want)
		}
	})
}
