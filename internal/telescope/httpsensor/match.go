package httpsensor

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
	// trie
	type node struct {
		child map[uint8]int32
		out   []int16
		fail  int32
	}
	nodes := []node{{child: map[uint8]int32{}}}
	for pi, p := range patterns {
		s := int32(0)
		for i := 0; i < len(p); i++ {
			c := m.class[p[i]]
			n, ok := nodes[s].child[c]
			if !ok {
				n = int32(len(nodes))
				nodes = append(nodes, node{child: map[uint8]int32{}})
				nodes[s].child[c] = n
			}
			s = n
		}
		nodes[s].out = append(nodes[s].out, int16(pi))
	}
	next := make([]int32, len(nodes)*m.classes)
	out := make([][]int16, len(nodes))
	// breadth-first: a node's fail state is complete before its children need it
	queue := []int32{0}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if s != 0 {
			nodes[s].out = append(nodes[s].out, out[nodes[s].fail]...)
		}
		out[s] = nodes[s].out
		for c := 0; c < m.classes; c++ {
			if n, ok := nodes[s].child[uint8(c)]; ok && c != 0 {
				if s != 0 {
					nodes[n].fail = next[int(nodes[s].fail)*m.classes+c]
				}
				next[int(s)*m.classes+c] = n
				queue = append(queue, n)
			} else if s != 0 {
				next[int(s)*m.classes+c] = next[int(nodes[s].fail)*m.classes+c]
			}
		}
	}
	// Renumber the states so that those where a pattern ends come last: the scan loop
	// then tests for a match with one comparison.
	order := make([]uint32, len(nodes)) // old -> new
	k := uint32(0)
	for pass := 0; pass < 2; pass++ {
		for s := range nodes {
			if (len(out[s]) > 0) == (pass == 1) {
				order[s] = k
				k++
			}
			if pass == 0 && s == len(nodes)-1 {
				m.firstOut = k
			}
		}
	}
	m.start = order[0]
	m.next = make([]uint32, len(next))
	m.out = make([][]int16, len(nodes))
	for s := range nodes {
		ns := int(order[s])
		m.out[ns] = out[s]
		for c := 0; c < m.classes; c++ {
			m.next[ns*m.classes+c] = order[next[s*m.classes+c]]
		}
	}
	return m
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
