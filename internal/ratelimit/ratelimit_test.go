package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"gantry/internal/config"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		name, in string
		perSec   float64 // 0: refused
	}{
		{"per second", "10r/s", 10},
		{"per minute", "30r/m", 0.5},
		{"one a minute", "1r/m", 1.0 / 60},
		{"the largest", "1000000r/s", 1e6},
		{"zero", "0r/s", 0},
		{"too many", "1000001r/s", 0},
		{"no number", "r/s", 0},
		{"negative", "-1r/s", 0},
		{"a sign", "+5r/s", 0},
		{"a fraction", "1.5r/s", 0},
		{"per hour", "10r/h", 0},
		{"no unit", "10", 0},
		{"spaces", "10 r/s", 0},
		{"upper case", "10R/S", 0},
		{"a huge number", "99999999999999999999r/s", 0},
		{"empty", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRate(tc.in)
			if tc.perSec == 0 {
				if err == nil {
					t.Fatalf("parseRate(%q) = %v, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.perSec {
				t.Fatalf("parseRate(%q) = %v, %v; want %v", tc.in, got, err, tc.perSec)
			}
		})
	}
}

func FuzzParseRate(f *testing.F) {
	f.Add("10r/s")  // the usual
	f.Add("30r/m")  // per minute
	f.Add("0r/s")   // no rate at all
	f.Add("1e3r/s") // not a whole number
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseRate(s)
		if err == nil && (r <= 0 || r > maxRate) {
			t.Fatalf("parseRate(%q) = %v: a rate out of bounds accepted", s, r)
		}
	})
}

var (
	a = netip.MustParsePrefix("192.0.2.1/32")
	b = netip.MustParsePrefix("192.0.2.2/32")
)

// A client gets its burst at once, then one request per 1/rate; another client
// has a bucket of its own.
func TestBucket(t *testing.T) {
	tb := newTable(2, 3, 100) // 2r/s, burst 3
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _, _ := tb.take(a, t0); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait, first := tb.take(a, t0)
	if ok || wait != 500*time.Millisecond || !first {
		t.Fatalf("after the burst: ok %v, wait %v, first %v; want refused, 500ms, first", ok, wait, first)
	}
	if ok, _, first := tb.take(a, t0.Add(100*time.Millisecond)); ok || first {
		t.Fatalf("still empty 100 ms later: ok %v first %v, want refused and not first", ok, first)
	}
	if ok, _, _ := tb.take(b, t0); !ok {
		t.Fatal("another client refused: it has its own bucket")
	}
	if ok, _, _ := tb.take(a, t0.Add(600*time.Millisecond)); !ok {
		t.Fatal("a token should have come back after 1/rate")
	}
	if ok, _, _ := tb.take(a, t0.Add(600*time.Millisecond)); ok {
		t.Fatal("only one token came back")
	}
	// An hour idle refills the bucket to the burst, no more.
	later := t0.Add(time.Hour)
	for i := range 3 {
		if ok, _, _ := tb.take(a, later); !ok {
			t.Fatalf("request %d after an hour refused", i+1)
		}
	}
	if ok, _, _ := tb.take(a, later); ok {
		t.Fatal("the bucket filled beyond the burst")
	}
}

// A flood of addresses never grows the table past its size; the forgotten are
// counted, and a client that keeps sending is not among them.
func TestTableBounded(t *testing.T) {
	const size = 64
	tb := newTable(1, 1, size)
	t0 := time.Unix(1000, 0)
	regular := netip.MustParsePrefix("198.51.100.7/32")
	now := t0
	for i := range 10000 {
		now = t0.Add(time.Duration(i) * time.Millisecond)
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		tb.take(p, now)
		if i%4 == 0 {
			tb.take(regular, now)
		}
		if n := tb.size(); n > size {
			t.Fatalf("after %d addresses the table holds %d clients, more than %d", i+1, n, size)
		}
	}
	if got := tb.evicted.Load(); got < 10000-size {
		t.Errorf("evicted %d, want at least %d", got, 10000-size)
	}
	// The regular client spent its one token long ago and is still remembered as
	// empty: were it forgotten, a flood would hand it a fresh burst.
	if ok, _, _ := tb.take(regular, now); ok {
		t.Error("the regular client was forgotten and got a fresh bucket")
	}
}

// Clients are told apart by address: IPv4 addresses each, IPv6 by /64; a refused
// one is told when to come back.
func TestHandlerKeys(t *testing.T) {
	o := &Options{Rate: "1r/m", Burst: 1}
	o.Provision(&config.Scope{})
	if p := o.Validate(&config.Scope{}); len(p) > 0 {
		t.Fatal(p)
	}
	h, err := wrap(o, config.Env{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, remote string
		status       int
	}{
		{"a first IPv4 client", "192.0.2.1:1000", 200},
		{"the same address, another port", "192.0.2.1:1001", 429},
		{"the next IPv4 address", "192.0.2.2:1000", 200},
		{"an IPv6 client", "[2001:db8::1]:1000", 200},
		{"another address of its /64", "[2001:db8::ffff:2]:1000", 429},
		{"the next /64", "[2001:db8:0:1::1]:1000", 200},
		{"IPv4 mapped in IPv6 is the IPv4 client", "[::ffff:192.0.2.2]:1000", 429},
		{"no IP address (a unix socket) is never limited", "@", 200},
		{"nor twice", "@", 200},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, w.Code, tc.status)
		}
		if ra := w.Header().Get("Retry-After"); (w.Code == 429) != (ra != "") || (ra != "" && ra != "60") {
			t.Errorf("%s: Retry-After %q with status %d (want 60 s for 1r/m)", tc.name, ra, w.Code)
		}
	}
}

func TestOptions(t *testing.T) {
	site := &config.Site{}
	siteOpts := &Options{Rate: "10r/s", Burst: 20}
	siteOpts.Provision(&config.Scope{Site: site})
	site.Middleware = []config.Settings{siteOpts}
	route := func(o *Options) *Options {
		o.Provision(&config.Scope{Site: site, Route: &config.Route{Path: "/"}})
		return o
	}
	tests := []struct {
		name          string
		o             *Options
		perSec        float64
		burst         int
		wantProblemAt string // the key of the one problem, "" for none
	}{
		{"a route takes its site's rate and burst", route(&Options{}), 10, 20, ""},
		{"its own burst on the site's rate", route(&Options{Burst: 5}), 10, 5, ""},
		{"its own rate, the default burst", route(&Options{Rate: "30r/m"}), 0.5, 1, ""},
		{"off exempts it", route(&Options{Rate: "off"}), 0, 0, ""},
		{"a bad rate", route(&Options{Rate: "10/s"}), 0, 0, "rate"},
		{"a negative burst", route(&Options{Rate: "5r/s", Burst: -1}), 5, 5, "burst"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.o.perSec != tc.perSec || (tc.perSec != 0 && tc.o.burst != tc.burst) {
				t.Errorf("rate %v burst %d, want %v and %d", tc.o.perSec, tc.o.burst, tc.perSec, tc.burst)
			}
			probs := tc.o.Validate(&config.Scope{Site: site, Route: &config.Route{}})
			switch {
			case tc.wantProblemAt == "" && len(probs) > 0:
				t.Errorf("problems %v", probs)
			case tc.wantProblemAt != "" && (len(probs) != 1 || probs[0].Key != tc.wantProblemAt):
				t.Errorf("problems %v, want one about %s", probs, tc.wantProblemAt)
			}
		})
	}
	for _, bad := range []*Options{{Rate: "off"}, {Burst: 3}} {
		bad.Provision(&config.Scope{Site: &config.Site{}})
		if len(bad.Validate(&config.Scope{Site: &config.Site{}})) != 1 {
			t.Errorf("site options %+v: want one problem", bad)
		}
	}
}
