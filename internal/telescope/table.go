package telescope

// table is a bounded map from flowKey kept as a dense slab plus an index, so that a
// random entry can be sampled in O(1) for eviction and the whole state can be swept
// without chasing pointers.
//
// The index is an open-addressing hash table with linear probing on the keyed
// addr.hash, not a Go map: every packet looks its source or victim up, and a Go map
// hashes the 24-byte key once more with its own function and pays for generality
// this table does not need. Its slots hold the entry's slab index and the low half
// of its hash, so that a probe rarely looks at the slab and removing an entry hashes
// nothing. A sender cannot aim keys at one run of slots without the hash key, and
// the load stays at most half.
type table[V any] struct {
	slots []tslot // len is a power of two, 0 until the first insert
	keys  []flowKey
	tags  []uint32 // each key's hash, as in its slot
	vals  []V
	last  int // index of the last entry found: floods repeat one victim or source
}

// tslot is one index slot: idx is the slab index plus one, 0 for an empty slot; tag
// is the low half of the key's hash, whose low bits are the slot the key belongs in,
// so that neither a probe nor moving an entry has to hash a key again.
type tslot struct {
	tag uint32
	idx int32
}

func newTable[V any]() table[V] { return table[V]{} }

func (k flowKey) hash() uint32 {
	return uint32(k.a.hash() ^ uint64(k.proto)*0x9e3779b97f4a7c15)
}

func (t *table[V]) len() int { return len(t.keys) }

// lookup returns the slot of k, whose hash is tag, or the empty slot where k would go.
func (t *table[V]) lookup(k flowKey, tag uint32) int {
	mask := len(t.slots) - 1
	for j := int(tag) & mask; ; j = (j + 1) & mask {
		s := t.slots[j]
		if s.idx == 0 || s.tag == tag && t.keys[s.idx-1] == k {
			return j
		}
	}
}

// slotOf returns the slot that holds entry i.
func (t *table[V]) slotOf(i int) int {
	mask := len(t.slots) - 1
	for j := int(t.tags[i]) & mask; ; j = (j + 1) & mask {
		if int(t.slots[j].idx) == i+1 {
			return j
		}
	}
}

func (t *table[V]) find(k flowKey) (int, bool) {
	if t.last < len(t.keys) && t.keys[t.last] == k {
		return t.last, true
	}
	if len(t.keys) == 0 {
		return 0, false
	}
	s := t.slots[t.lookup(k, k.hash())]
	if s.idx == 0 {
		return 0, false
	}
	t.last = int(s.idx - 1)
	return t.last, true
}

// insert adds k with a zero value and returns its index; k must not be present.
func (t *table[V]) insert(k flowKey) int {
	if 2*(len(t.keys)+1) > len(t.slots) {
		t.grow()
	}
	i := len(t.keys)
	tag := k.hash()
	t.slots[t.lookup(k, tag)] = tslot{tag: tag, idx: int32(i + 1)}
	t.keys = append(t.keys, k)
	t.tags = append(t.tags, tag)
	var zero V
	t.vals = append(t.vals, zero)
	return i
}

func (t *table[V]) grow() {
	t.slots = make([]tslot, max(16, 2*len(t.slots)))
	mask := len(t.slots) - 1
	for i, tag := range t.tags {
		j := int(tag) & mask
		for t.slots[j].idx != 0 {
			j = (j + 1) & mask
		}
		t.slots[j] = tslot{tag: tag, idx: int32(i + 1)}
	}
}

// remove deletes entry i by moving the last entry into its place.
func (t *table[V]) remove(i int) {
	last := len(t.keys) - 1
	t.unindex(t.slotOf(i))
	if i != last {
		t.slots[t.slotOf(last)].idx = int32(i + 1)
		t.keys[i] = t.keys[last]
		t.tags[i] = t.tags[last]
		t.vals[i] = t.vals[last]
	}
	t.keys[last] = flowKey{}
	var zeroV V
	t.vals[last] = zeroV // drop references held by sets so they can be collected
	t.keys = t.keys[:last]
	t.tags = t.tags[:last]
	t.vals = t.vals[:last]
}

// unindex empties slot j and shifts back the entries after it that probed past it,
// so that every lookup still finds its key before an empty slot (Knuth's algorithm R).
func (t *table[V]) unindex(j int) {
	mask := len(t.slots) - 1
	for {
		t.slots[j] = tslot{}
		k := j
		for {
			k = (k + 1) & mask
			s := t.slots[k]
			if s.idx == 0 {
				return
			}
			// The entry at k may move to j unless its home lies cyclically in (j, k].
			if home := int(s.tag) & mask; (k-home)&mask >= (k-j)&mask {
				t.slots[j] = s
				j = k
				break
			}
		}
	}
}
