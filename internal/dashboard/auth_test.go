package dashboard

import (
	"fmt"
	"gantry/internal/clientnet"
	"gantry/internal/passhash"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// clientFrom is a client whose connections come from the loopback address src
// (all of 127.0.0.0/8 is this machine), so one test can play many sources.
func clientFrom(src string) *http.Client {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c := client()
	c.Transport = &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	return c
}

func loginFrom(t *testing.T, g *gantry, src, pw string) *http.Response {
	t.Helper()
	resp, _ := do(t, clientFrom(src), "POST", g.admin+"/login", strings.NewReader(url.Values{"password": {pw}}.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	return resp
}

// countHashes makes g's password checks count how many run at once; each waits
// for release first, so that a test can hold the slots.
func countHashes(g *gantry, release <-chan struct{}) (active, peak *atomic.Int32) {
	active, peak = new(atomic.Int32), new(atomic.Int32)
	g.dash.auth.verify = func(p *passwordHash, pw string) bool {
		n := active.Add(1)
		defer active.Add(-1)
		for {
			m := peak.Load()
			if n <= m || peak.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
		return p.Verify(pw)
	}
	return active, peak
}

// Parallel logins (from different networks, so the rate limit does not stop
// them) never compute more password hashes at once than the semaphore allows:
// the memory of a burst is bounded, not a multiple of its size.
func TestLoginHashesBounded(t *testing.T) {
	const pw = "correct horse battery staple"
	g := startGantry(t, setup{password: pw})
	release := make(chan struct{})
	active, peak := countHashes(g, release)
	const logins = 12
	codes := make(chan int, logins)
	var wg sync.WaitGroup
	for i := range logins {
		wg.Go(func() {
			resp := loginFrom(t, g, netip.AddrFrom4([4]byte{127, 0, byte(10 + i), 1}).String(), pw)
			codes <- resp.StatusCode
		})
	}
	peertest.WaitFor(t, 10*time.Second, "both hash slots to be taken", func() bool { return active.Load() == int32(cap(passhash.Slots)) })
	close(release)
	wg.Wait()
	close(codes)
	ok := 0
	for c := range codes {
		switch c {
		case http.StatusSeeOther:
			ok++
		case http.StatusServiceUnavailable: // waited hashWait for a slot
		default:
			t.Errorf("login answered %d", c)
		}
	}
	if p := peak.Load(); p > int32(cap(passhash.Slots)) {
		t.Fatalf("%d password hashes ran at once, the limit is %d", p, cap(passhash.Slots))
	}
	if ok < cap(passhash.Slots) {
		t.Fatalf("only %d of %d logins succeeded", ok, logins)
	}
}

// A login that finds every slot taken gives up after a short wait with 503 and
// Retry-After, instead of queueing for ever.
func TestLoginBusyGivesUp(t *testing.T) {
	const pw = "correct horse battery staple"
	g := startGantry(t, setup{password: pw})
	release := make(chan struct{})
	active, _ := countHashes(g, release)
	var wg sync.WaitGroup
	t.Cleanup(func() { wg.Wait() })
	defer close(release)
	for i := range cap(passhash.Slots) {
		wg.Go(func() { loginFrom(t, g, netip.AddrFrom4([4]byte{127, 0, byte(30 + i), 1}).String(), pw) })
	}
	peertest.WaitFor(t, 10*time.Second, "both hash slots to be taken", func() bool { return active.Load() == int32(cap(passhash.Slots)) })
	resp := loginFrom(t, g, "127.0.40.1", pw)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("login with every slot taken: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	// Basic credentials (a Prometheus scrape) wait the same way.
	req, _ := http.NewRequest("GET", g.admin+"/metrics", nil)
	req.SetBasicAuth("prometheus", pw)
	r, err := clientFrom("127.0.41.1").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("basic auth with every slot taken: %s", r.Status)
	}
}

// The login rate limit is per /24: two addresses of one /24 share it, an
// address of the next /24 has its own.
func TestLoginRateLimitPerNetwork(t *testing.T) {
	g := startGantry(t, setup{password: "s3cret-s3cret"})
	for range loginBurst {
		if loc := loginFrom(t, g, "127.0.50.2", "wrong").Header.Get("Location"); loc != "/login?error=bad" {
			t.Fatalf("attempt within the burst: %q", loc)
		}
	}
	if loc := loginFrom(t, g, "127.0.50.3", "wrong").Header.Get("Location"); !strings.HasPrefix(loc, "/login?error=wait") {
		t.Fatalf("another address of the same /24: %q, want the limit", loc)
	}
	if loc := loginFrom(t, g, "127.0.51.2", "wrong").Header.Get("Location"); loc != "/login?error=bad" {
		t.Fatalf("an address of another /24: %q, want its own attempts", loc)
	}
}

func TestSourceNet(t *testing.T) {
	for _, tc := range []struct {
		name, a, b string
		same       bool
	}{
		{"IPv4 same /24", "203.0.113.5", "203.0.113.250", true},
		{"IPv4 next /24", "203.0.113.5", "203.0.114.5", false},
		{"IPv6 same /64", "2001:db8::1", "2001:db8::ffff:1", true},
		{"IPv6 next /64", "2001:db8::1", "2001:db8:0:1::1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := clientnet.Of(netip.MustParseAddr(tc.a)), clientnet.Of(netip.MustParseAddr(tc.b))
			if (a == b) != tc.same {
				t.Fatalf("clientnet.Of(%s) = %s, clientnet.Of(%s) = %s; same = %v, want %v", tc.a, a, tc.b, b, a == b, tc.same)
			}
		})
	}
	var a auth
	a.limits = map[netip.Prefix]*bucket{}
	now := time.Now()
	for range loginBurst {
		a.allow(netip.MustParseAddr("2001:db8::1"), now)
	}
	if ok, _ := a.allow(netip.MustParseAddr("2001:db8::2"), now); ok {
		t.Fatal("another address of the same /64 got an attempt past the burst")
	}
	if ok, _ := a.allow(netip.MustParseAddr("2001:db8:0:1::1"), now); !ok {
		t.Fatal("an address of another /64 was limited")
	}
}

// TestLoginRateLimitWideNetwork: an attacker holding a whole IPv6 /48 (or IPv4
// /16) cannot multiply its attempts by moving to a fresh /64 (or /24) each time.
func TestLoginRateLimitWideNetwork(t *testing.T) {
	for _, tc := range []struct {
		name  string
		addr  func(i int) string
		other string
	}{
		{"IPv6 /64s of one /48", func(i int) string { return fmt.Sprintf("2001:db8:7:%x::1", i) }, "2001:db8:8::1"},
		{"IPv4 /24s of one /16", func(i int) string { return fmt.Sprintf("198.51.%d.1", i) }, "198.52.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := auth{limits: map[netip.Prefix]*bucket{}}
			now := time.Now()
			allowed := 0
			for i := range 4 * netBurst {
				if ok, _ := a.allow(netip.MustParseAddr(tc.addr(i)), now); ok {
					allowed++
				}
			}
			if allowed != netBurst {
				t.Errorf("%d attempts allowed across fresh networks, want the wide network's %d", allowed, netBurst)
			}
			if ok, _ := a.allow(netip.MustParseAddr(tc.other), now); !ok {
				t.Error("an address of another wide network was refused")
			}
		})
	}
}

// Whoever shares the admin's network can spend its login budget; a browser that
// has logged in before keeps a budget of its own (its signed device cookie), so
// the admin still gets in. A forged cookie counts as none, and a known browser
// is still limited on its own.
func TestLoginDeviceCookieBeatsLockout(t *testing.T) {
	const pw = "s3cret-s3cret"
	g := startGantry(t, setup{password: pw})
	login := func(src, pass, cookie string) *http.Response {
		t.Helper()
		hdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
		if cookie != "" {
			hdr["Cookie"] = deviceCookie + "=" + cookie
		}
		resp, _ := do(t, clientFrom(src), "POST", g.admin+"/login", strings.NewReader(url.Values{"password": {pass}}.Encode()), hdr)
		return resp
	}
	first := login("127.0.60.2", pw, "")
	var dev string
	for _, c := range first.Cookies() {
		if c.Name == deviceCookie {
			dev = c.Value
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.MaxAge <= 0 {
				t.Errorf("device cookie %+v: want HttpOnly, SameSite=Strict, long-lived", c)
			}
		}
	}
	if first.Header.Get("Location") != "/" || dev == "" {
		t.Fatalf("first login: %q, device cookie %q", first.Header.Get("Location"), dev)
	}
	for range loginBurst + 1 {
		login("127.0.60.3", "wrong", "")
	}
	if loc := login("127.0.60.2", pw, "").Header.Get("Location"); !strings.HasPrefix(loc, "/login?error=wait") {
		t.Fatalf("right password without the device cookie after the flood: %q, want the network's limit", loc)
	}
	other := "A"
	if dev[20] == 'A' {
		other = "B"
	}
	forged := dev[:20] + other + dev[21:] // another id: its HMAC no longer holds
	if loc := login("127.0.60.2", pw, forged).Header.Get("Location"); !strings.HasPrefix(loc, "/login?error=wait") {
		t.Fatalf("right password with a forged device cookie: %q, want the network's limit", loc)
	}
	ok := login("127.0.60.2", pw, dev)
	if ok.Header.Get("Location") != "/" {
		t.Fatalf("right password with the device cookie after the flood: %q, want in", ok.Header.Get("Location"))
	}
	for _, c := range ok.Cookies() {
		if c.Name == deviceCookie {
			t.Errorf("a known browser was given a new device cookie")
		}
	}
	for range loginBurst {
		login("127.0.60.2", "wrong", dev)
	}
	if loc := login("127.0.60.2", pw, dev).Header.Get("Location"); !strings.HasPrefix(loc, "/login?error=wait") {
		t.Fatalf("a known browser after its own %d wrong passwords: %q, want its limit", loginBurst, loc)
	}
}
