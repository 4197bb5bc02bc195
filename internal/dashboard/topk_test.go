package dashboard

import (
	"strconv"
	"testing"
	"time"

	"gantry/internal/accesslog"
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
		if w.n > topKSlots || len(w.index) > topKSlots {
			t.Fatalf("%d entries, %d indexed: more than %d", w.n, len(w.index), topKSlots)
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

// TestRoutesCapped: routes past maxRoutes (renamed by reload after reload)
// count under "(other)" instead of growing the table.
func TestRoutesCapped(t *testing.T) {
	tr := newTraffic()
	now := time.Unix(1_800_000_000, 0)
	for i := range maxRoutes + 50 {
		tr.observe(&accesslog.Record{Site: "s", Route: "/r" + strconv.Itoa(i), Status: 200, RemoteAddr: "192.0.2.1:1", URI: "/"}, now)
	}
	tr.tick(1)
	rs := tr.snapshot()
	if len(rs) != maxRoutes+1 {
		t.Fatalf("%d routes tracked, want %d and (other)", len(rs), maxRoutes)
	}
	for _, r := range rs {
		if r.Route == "(other)" && r.Total != 50 {
			t.Fatalf("(other) = %+v, want the 50 past the cap", r)
		}
	}
}

// TestTopKClockSetBack: after the clock ran a day ahead and was set back, the
// top lists show the requests of now, not those stamped in the future, and do
// not stay empty until the clock catches up.
func TestTopKClockSetBack(t *testing.T) {
	k := newTopK()
	now := time.Unix(1_800_000_000, 0)
	for range 5 {
		k.add("/future", now.Add(24*time.Hour))
	}
	k.add("/now", now)
	top := k.top(5, now)
	if len(top) != 1 || top[0] != (TopEntry{Key: "/now", Count: 1}) {
		t.Fatalf("top after the clock was set back = %+v, want /now alone", top)
	}
}
