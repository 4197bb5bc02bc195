package dashboard

import (
	"strconv"
	"testing"
	"time"
)

// TestTopKBounded: a flood of distinct URLs neither grows the sketch past its
// slots nor hides a URL that a tenth of the requests ask for.
func TestTopKBounded(t *testing.T) {
	k := newTopK()
	now := time.Unix(1_800_000_000, 0)
	for i := range 100_000 {
		k.add("/flood/"+strconv.Itoa(i), now)
		if i%10 == 0 {
			k.add("/hot", now)
		}
		if i%100 == 0 {
			k.add("/warm", now)
		}
	}
	for _, w := range k.windows {
		if len(w.entries) > topKSlots || len(w.index) > topKSlots {
			t.Fatalf("%d entries, %d indexed: more than %d", len(w.entries), len(w.index), topKSlots)
		}
	}
	top := k.top(2, now)
	if len(top) != 2 || top[0].Key != "/hot" || top[0].Count < 10_000 || top[0].Count-top[0].Error > 10_000 {
		t.Fatalf("top = %+v", top)
	}
	// an hour later the flood has aged out
	if top := k.top(5, now.Add(time.Hour)); len(top) != 0 {
		t.Fatalf("an hour later: %+v", top)
	}
	long := string(make([]byte, 5000))
	k.add(long, now)
	for _, e := range k.top(topKSlots, now) {
		if len(e.Key) > topKKeyLen {
			t.Fatalf("kept a %d-byte key", len(e.Key))
		}
	}
}

func TestHostOf(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:5000": "192.0.2.1", "[2001:db8::1]:443": "2001:db8::1", "2001:db8::1": "2001:db8::1", "": "", "@": "@",
	} {
		if got := hostOf(in); got != want {
			t.Errorf("hostOf(%q) = %q, want %q", in, got, want)
		}
	}
}
