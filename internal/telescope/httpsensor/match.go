package httpsensor

// matcher finds every rule pattern in a string in one pass, case-insensitively for
// ASCII: an Aho-Corasick automaton compiled to a dense DFA over byte classes. One
// table lookup per input byte, no allocation, whatever the number of patterns: the
// sensor runs on every request, so its cost must not grow with the rule file.
type matcher struct {
	class   [256]uint8 // input byte -> column; 0 is "a byte no pattern uses"
	classes int
	next    []int32   // state*classes + class -> state
	out     [][]int16 // state -> patterns ending here (suffix links folded in)
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
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
	m.next = make([]int32, len(nodes)*m.classes)
	m.out = make([][]int16, len(nodes))
	// breadth-first: a node's fail state is complete before its children need it
	queue := []int32{0}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if s != 0 {
			nodes[s].out = append(nodes[s].out, m.out[nodes[s].fail]...)
		}
		m.out[s] = nodes[s].out
		for c := 0; c < m.classes; c++ {
			if n, ok := nodes[s].child[uint8(c)]; ok && c != 0 {
				if s == 0 {
					nodes[n].fail = 0
				} else {
					nodes[n].fail = m.next[int(nodes[s].fail)*m.classes+c]
				}
				m.next[int(s)*m.classes+c] = n
				queue = append(queue, n)
			} else if s != 0 {
				m.next[int(s)*m.classes+c] = m.next[int(nodes[s].fail)*m.classes+c]
			}
		}
	}
	return m
}

// step advances the automaton by one input byte.
func (m *matcher) step(state int32, b byte) int32 {
	return m.next[state*int32(m.classes)+int32(m.class[b])]
}
