package httpsensor

import "slices"

// matcher finds every rule pattern in a string in one pass, case-insensitively for
// ASCII: an Aho-Corasick automaton compiled to a dense DFA over byte classes. One
// table lookup per input byte, no allocation, whatever the number of patterns: the
// sensor runs on every request, so its cost must not grow with the rule file.
type matcher struct {
	class   [256]uint8 // input byte -> column; 0 is "a byte no pattern uses"
	classes int
	next    []uint32  // state*classes + class -> state
	out     [][]int16 // state -> patterns ending here (suffix links folded in)
	// start is the initial state; states >= firstOut have patterns in out
	start    uint32
	firstOut uint32
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

func upperASCII(b byte) byte {
	if 'a' <= b && b <= 'z' {
		return b - 'a' + 'A'
	}
	return b
}

func newMatcher(patterns []string) *matcher {
	m := &matcher{classes: 1}
	for _, p := range patterns {
		for i := 0; i < len(p); i++ {
			c := lowerASCII(p[i])
			if m.class[c] == 0 {
				m.class[c] = uint8(m.classes)
				m.classes++
			}
		}
	}
	for b := 0; b < 256; b++ {
		m.class[b] = m.class[lowerASCII(byte(b))]
	}
	// The table is built where it stays, in one allocation of its final size: the
	// sensor is made at every start, and garbage made then stays resident in a
	// server that idles (no collection runs before the heap reaches 4 MB).
	classes := m.classes
	states := trieSize(patterns)
	next := make([]uint32, states*classes)
	out := make([][]int16, states)
	// the trie: a row per state, 0 where a state has no child (the root, state 0,
	// is nobody's child)
	n := uint32(1)
	for pi, p := range patterns {
		s := uint32(0)
		for i := 0; i < len(p); i++ {
			at := int(s)*classes + int(m.class[p[i]])
			if next[at] == 0 {
				next[at] = n
				n++
			}
			s = next[at]
		}
		out[s] = append(out[s], int16(pi))
	}
	// Breadth-first, each row becomes the state's full transitions: a state's fail
	// state is shallower, so its row is complete before it is needed.
	fail := make([]uint32, states)
	queue := make([]uint32, 0, states)
	queue = append(queue, 0)
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if s != 0 {
			out[s] = append(out[s], out[fail[s]]...)
		}
		row, frow := next[int(s)*classes:][:classes], next[int(fail[s])*classes:][:classes]
		for c := 1; c < classes; c++ {
			if child := row[c]; child != 0 { // untouched until now: a trie child
				if s != 0 {
					fail[child] = frow[c]
				}
				queue = append(queue, child)
			} else if s != 0 {
				row[c] = frow[c]
			}
		}
	}
	// Renumber the states so that those where a pattern ends come last: the scan loop
	// then tests for a match with one comparison.
	order := fail // old -> new; fail is done with
	k := uint32(0)
	for pass := 0; pass < 2; pass++ {
		for s := range out {
			if (len(out[s]) > 0) == (pass == 1) {
				order[s] = k
				k++
			}
		}
		if pass == 0 {
			m.firstOut = k
		}
	}
	m.start = order[0]
	for i, s := range next {
		next[i] = order[s]
	}
	// move each row (and its patterns) to its new number, a cycle at a time
	for s := range order {
		for order[s] != uint32(s) {
			t := order[s]
			a, b := next[s*classes:][:classes], next[int(t)*classes:][:classes]
			for c := range a {
				a[c], b[c] = b[c], a[c]
			}
			out[s], out[t] = out[t], out[s]
			order[s], order[t] = order[t], order[s]
		}
	}
	m.next, m.out = next, out
	return m
}

// trieSize is the number of states of the patterns' trie (ASCII case folded),
// the root included: each pattern, in sorted order, adds the bytes it does not
// share with the one before.
func trieSize(patterns []string) int {
	folded := make([]string, len(patterns))
	for i, p := range patterns {
		b := []byte(p)
		for j := range b {
			b[j] = lowerASCII(b[j])
		}
		folded[i] = string(b)
	}
	slices.Sort(folded)
	n, prev := 1, ""
	for _, p := range folded {
		common := 0
		for common < len(p) && common < len(prev) && p[common] == prev[common] {
			common++
		}
		n += len(p) - common
		prev = p
	}
	return n
}

// run scans str from state and calls hit for every state where patterns end.
func (m *matcher) run(str string, hit func(out []int16)) {
	next, class, classes, firstOut := m.next, &m.class, uint32(m.classes), m.firstOut
	state := m.start
	for i := 0; i < len(str); i++ {
		state = next[state*classes+uint32(class[str[i]])]
		if state >= firstOut {
			hit(m.out[state])
		}
	}
}
