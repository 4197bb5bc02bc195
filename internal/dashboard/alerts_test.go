package dashboard

import (
	"strings"
	"testing"
	"time"

	"gantry/internal/certs"
	"gantry/internal/server"
	"gantry/internal/telescope/httpsensor"
)

var t0 = time.Unix(1700000000, 0)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// pool is one WSGI pool at /app/ with crashes unexpected exits so far, the last
// one at second lastAt.
func pool(crashes, lastAt int) server.PoolStatus {
	p := server.PoolStatus{Site: "default", Route: "/app/", Kind: "wsgi", Size: 2, Capacity: 2, Crashes: crashes,
		Workers: []server.WorkerStatus{{PID: 1, State: "ready"}, {PID: 2, State: "ready"}}}
	if crashes > 0 {
		p.LastCrash = &server.CrashStatus{Time: at(lastAt), PID: 4242, Status: "exit status 3", Stderr: "ZeroDivisionError: division by zero"}
	}
	return p
}

func status(ps ...server.PoolStatus) *server.Status { return &server.Status{Pools: ps} }

// TestAlertsOnAndOff drives each alert on and off with the inputs the sampler
// would give it, one tick a second; the pools and certificates are read every
// fifth tick as the sampler does.
func TestAlertsOnAndOff(t *testing.T) {
	sensor := httpsensor.New(httpsensor.Options{})
	cases := []struct {
		name  string
		input func(sec int) alertInput
		// want: at these seconds, the kinds of the alerts on (comma-separated, "" for none)
		want map[int]string
		// check, when set, looks at the alerts at second check.at
		check func(t *testing.T, got []Alert)
		at    int
	}{
		{
			name: "crash loop: three crashes in a minute, then quiet",
			input: func(sec int) alertInput {
				c := min(max(sec-20, 0)/10, 3) // a crash at 30, 40 and 50 s
				return alertInput{status: status(pool(c, 20+10*c))}
			},
			want: map[int]string{29: "", 49: "", 50: "crash_loop", 325: "crash_loop", 330: ""}, // the crash at 30 s leaves the window at 330 s
			at:   50,
			check: func(t *testing.T, got []Alert) {
				a := got[0]
				for _, want := range []string{"/app/", "3 times", "last 5 min", "pid 4242", "exit status 3", "0 s ago"} {
					if !strings.Contains(a.Message, want) {
						t.Errorf("message %q lacks %q", a.Message, want)
					}
				}
				if a.Detail != "ZeroDivisionError: division by zero" || a.Pool != "default /app/" || a.ID != "crash default /app/" {
					t.Errorf("alert %+v: want the stderr line as detail and the pool to link to", a)
				}
			},
		},
		{
			name: "crash loop of a worker that no longer starts",
			input: func(sec int) alertInput {
				p := pool(min(sec/5, 4), sec)
				if p.LastCrash != nil {
					p.LastCrash.PID, p.LastCrash.Status = 0, "exited during startup (exit status 1)"
					p.LastCrash.Stderr = "ModuleNotFoundError: No module named 'mysite'"
				}
				return alertInput{status: status(p)}
			},
			want: map[int]string{10: "", 15: "crash_loop"},
			at:   15,
			check: func(t *testing.T, got []Alert) {
				if m := got[0].Message; !strings.Contains(m, "the last restart failed: exited during startup (exit status 1)") || strings.Contains(m, "pid 0") {
					t.Errorf("message %q", m)
				}
				if got[0].Detail != "ModuleNotFoundError: No module named 'mysite'" {
					t.Errorf("detail %q", got[0].Detail)
				}
			},
		},
		{
			name: "reloads and recycling restart workers but do not crash them",
			input: func(sec int) alertInput {
				p := pool(0, 0)
				for i := range p.Workers {
					p.Workers[i].Restarts = sec // a restart a second
				}
				return alertInput{status: status(p)}
			},
			want: map[int]string{100: "", 200: ""},
		},
		{
			name: "a pool rebuilt on reload starts its count again",
			input: func(sec int) alertInput {
				if sec < 100 {
					return alertInput{status: status(pool(1, 0))}
				}
				if sec < 400 {
					return alertInput{status: status(pool(0, 0))} // replaced: no underflow into an alarm
				}
				return alertInput{status: status(pool(2, 400))}
			},
			want: map[int]string{50: "", 150: "", 420: ""},
		},
		{
			name: "saturated: a queue that lasts",
			input: func(sec int) alertInput {
				p := pool(0, 0)
				if sec >= 10 && sec < 30 {
					p.Busy, p.Queued, p.QueuedAt = 2, 7, at(10)
				}
				return alertInput{status: status(p)}
			},
			want: map[int]string{9: "", 10: "", 14: "", 15: "saturated", 29: "saturated", 30: ""},
			at:   25,
			check: func(t *testing.T, got []Alert) {
				if m := got[0].Message; !strings.Contains(m, "all 2 wsgi workers of /app/ are busy") || !strings.Contains(m, "7 more waiting for 15 s") {
					t.Errorf("message %q", m)
				}
				if got[0].Pool != "default /app/" {
					t.Errorf("alert %+v has no pool to link to", got[0])
				}
			},
		},
		{
			name: "certificate renewal failing, then fixed",
			input: func(sec int) alertInput {
				c := certs.CertStatus{Name: "example.org", Source: "acme", NotAfter: at(0).Add(20 * 24 * time.Hour), LastAttempt: at(0)}
				if sec >= 10 && sec < 60 {
					c.LastAttempt, c.LastError = at(10), "acme: urn:ietf:params:acme:error:rateLimited: too many certificates"
				}
				return alertInput{status: &server.Status{Certificates: []certs.CertStatus{c}}}
			},
			want: map[int]string{5: "", 10: "certificate", 59: "certificate", 60: ""},
		},
		{
			name: "certificate alert wording",
			input: func(sec int) alertInput {
				c := certs.CertStatus{Name: "example.org", Source: "acme", NotAfter: at(0).Add(20 * 24 * time.Hour),
					LastAttempt: at(0), LastError: "acme: rate limited"}
				return alertInput{status: &server.Status{Certificates: []certs.CertStatus{c}}}
			},
			want: map[int]string{0: "certificate"},
			at:   120,
			check: func(t *testing.T, got []Alert) {
				want := "certificate for example.org (acme): obtaining or renewing it failed (last try 2 min ago); the one served expires in 19 days"
				if got[0].Message != want || got[0].Detail != "acme: rate limited" {
					t.Errorf("alert %+v\nwant message %q", got[0], want)
				}
			},
		},
		{
			name: "attack: exploit attempts, then none for five minutes",
			input: func(sec int) alertInput {
				return alertInput{sensor: sensor, exploits: uint64(min(max(sec-10, 0), 20))}
			},
			want: map[int]string{10: "", 11: "attack", 30: "attack", 325: "attack", 335: ""},
			at:   30,
			check: func(t *testing.T, got []Alert) {
				if !strings.HasPrefix(got[0].Message, "20 exploit attempts in the last 5 min") {
					t.Errorf("message %q", got[0].Message)
				}
			},
		},
		{
			name: "5xx burst",
			input: func(sec int) alertInput {
				if sec >= 30 && sec < 40 {
					return alertInput{requests: 20, errors5xx: 15}
				}
				return alertInput{requests: 10, errors5xx: uint64(sec % 10 / 9)}
			},
			want: map[int]string{29: "", 32: "5xx_burst", 95: "5xx_burst", 100: ""},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAlerter()
			last := 0
			for s := range tc.want {
				last = max(last, s)
			}
			last = max(last, tc.at)
			for sec := 0; sec <= last; sec++ {
				in := tc.input(sec)
				if sec%5 != 0 {
					in.status = nil
				}
				got := a.update(at(sec), in)
				if want, ok := tc.want[sec]; ok {
					if k := kinds(got); k != want {
						t.Fatalf("second %d: alerts %q, want %q: %+v", sec, k, want, got)
					}
				}
				if tc.check != nil && sec == tc.at {
					if len(got) == 0 {
						t.Fatalf("second %d: no alert to check", sec)
					}
					tc.check(t, got)
				}
			}
		})
	}
}

func kinds(as []Alert) string {
	var k []string
	for _, x := range as {
		k = append(k, x.Kind)
	}
	return strings.Join(k, ",")
}

// TestAlertOccurrence: while a condition lasts its alert keeps ID and Since, which
// is what a dismissal remembers; when it ends and starts again, Since is new, so
// the dismissed banner comes back.
func TestAlertOccurrence(t *testing.T) {
	a := newAlerter()
	on := func(sec int) []Alert {
		p := pool(0, 0)
		p.Busy, p.Queued, p.QueuedAt = 2, 1, at(sec-10)
		return a.update(at(sec), alertInput{status: status(p)})
	}
	first := on(100)
	again := on(101)
	if len(first) != 1 || len(again) != 1 || first[0].ID != again[0].ID || !first[0].Since.Equal(again[0].Since) {
		t.Fatalf("one occurrence changed identity: %+v then %+v", first, again)
	}
	if off := a.update(at(102), alertInput{status: status(pool(0, 0))}); len(off) != 0 {
		t.Fatalf("alerts with no queue: %+v", off)
	}
	next := on(200)
	if len(next) != 1 || next[0].ID != first[0].ID || !next[0].Since.After(first[0].Since) {
		t.Fatalf("a new occurrence %+v, want the same ID with a later since than %+v", next, first)
	}
}

func TestHumanDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0 s"},
		{0, "0 s"},
		{59*time.Second + 900*time.Millisecond, "59 s"},
		{5 * time.Minute, "5 min"},
		{time.Hour, "1 h"},
		{2*time.Hour + 10*time.Minute, "2 h 10 min"},
		{24 * time.Hour, "1 day"},
		{59*24*time.Hour + time.Hour, "59 days"},
	} {
		if got := humanDuration(tc.d); got != tc.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
