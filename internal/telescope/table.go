package telescope

// table is a bounded map kept as a dense slab plus an index, so that a random entry
// can be sampled in O(1) for eviction and the whole state can be swept without
// chasing pointers.
type table[K comparable, V any] struct {
	idx  map[K]int32
	keys []K
	vals []V
	last int // index of the last entry found: floods repeat one victim or source
}

func newTable[K comparable, V any]() table[K, V] {
	return table[K, V]{idx: make(map[K]int32)}
}

func (t *table[K, V]) len() int { return len(t.keys) }

func (t *table[K, V]) find(k K) (int, bool) {
	if t.last < len(t.keys) && t.keys[t.last] == k {
		return t.last, true
	}
	i, ok := t.idx[k]
	if ok {
		t.last = int(i)
	}
	return int(i), ok
}

// insert adds k with a zero value and returns its index; k must not be present.
func (t *table[K, V]) insert(k K) int {
	i := len(t.keys)
	t.idx[k] = int32(i)
	t.keys = append(t.keys, k)
	var zero V
	t.vals = append(t.vals, zero)
	return i
}

// remove deletes entry i by moving the last entry into its place.
func (t *table[K, V]) remove(i int) {
	last := len(t.keys) - 1
	delete(t.idx, t.keys[i])
	if i != last {
		t.keys[i] = t.keys[last]
		t.vals[i] = t.vals[last]
		t.idx[t.keys[i]] = int32(i)
	}
	var zeroK K
	var zeroV V
	t.keys[last] = zeroK
	t.vals[last] = zeroV // drop references held by sets so they can be collected
	t.keys = t.keys[:last]
	t.vals = t.vals[:last]
}
