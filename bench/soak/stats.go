package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Outcome classes.
const (
	ok       = "ok"
	expected = "expected"
	defect   = "defect"
)

// tally counts outcomes per traffic class and keeps examples of defects.
type tally struct {
	mu       sync.Mutex
	counts   map[string]map[string]int // class -> "ok" | "expected: why" | "defect: why"
	examples []string
	mismatch int
	kills    []killEvent
	faults   map[string]int
	samples  []sample
	notes    []string
	okN      int64          // requests answered as they should be
	okBy     [nGroups]int64 // the same by group, to tell what a slow window lacked
	paused   time.Duration  // time the load was stopped for samples
	baseline rate           // the same mix before any fault
	quiet    []rate         // windows with faults paused, after faults began
}

// rate is the requests answered well per second of load over a window.
type rate struct {
	at    time.Duration // the window's end, from the start of the run
	perS  float64
	by    [nGroups]float64
	secs  float64
	label string
}

type killEvent struct {
	at   time.Time // SIGKILL sent
	dead time.Time // the process seen gone (zero until then)
	kind string    // "wsgi" or "fastcgi"
}

func newTally() *tally {
	return &tally{counts: map[string]map[string]int{}, faults: map[string]int{}}
}

func (t *tally) add(class, kind, why string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := kind
	if why != "" {
		key += ": " + why
	}
	m := t.counts[class]
	if m == nil {
		m = map[string]int{}
		t.counts[class] = m
	}
	m[key]++
	if kind == ok {
		t.okN++
		t.okBy[group(class)]++
	}
	if kind == defect && len(t.examples) < 40 {
		t.examples = append(t.examples, time.Now().Format("15:04:05.000")+" "+class+": "+why)
	}
}

func (t *tally) addMismatch(class, why string) {
	t.mu.Lock()
	t.mismatch++
	t.mu.Unlock()
	t.add(class, defect, "checksum mismatch: "+why)
}

// killed records a SIGKILL about to be sent; died records when the process was
// seen gone.
func (t *tally) killed(kind string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.kills = append(t.kills, killEvent{at: time.Now(), kind: kind})
	return len(t.kills) - 1
}

func (t *tally) died(i int) {
	t.mu.Lock()
	t.kills[i].dead = time.Now()
	t.mu.Unlock()
}

// killedDuring reports whether a worker of kind died while a request ran: the
// request started before the process was gone and ended after the kill was
// sent. One that started after the death found a dead worker, which gantry
// must route around: that is not expected.
func (t *tally) killedDuring(kind string, start, end time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.kills) - 1; i >= 0; i-- {
		k := t.kills[i]
		if k.kind != kind || k.at.After(end) {
			continue
		}
		if k.dead.IsZero() || !k.dead.Before(start) {
			return true
		}
		if k.dead.Before(start.Add(-time.Minute)) {
			return false
		}
	}
	return false
}

// lastKill says when a worker of kind was last killed, for a defect's message.
func (t *tally) lastKill(kind string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.kills) - 1; i >= 0; i-- {
		if t.kills[i].kind == kind {
			return "last " + kind + " kill " + t.kills[i].at.Format("15:04:05.000")
		}
	}
	return "no " + kind + " kill yet"
}

func (t *tally) fault(name string) {
	t.mu.Lock()
	t.faults[name]++
	t.mu.Unlock()
}

func (t *tally) note(format string, args ...any) {
	t.mu.Lock()
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
	t.mu.Unlock()
}

func (t *tally) defects() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, m := range t.counts {
		for k, v := range m {
			if strings.HasPrefix(k, defect) {
				n += v
			}
		}
	}
	return n
}

// report writes the markdown summary.
func (t *tally) report(w io.Writer, d time.Duration, final finalState) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	pass := true
	fmt.Fprintf(w, "## gantry soak: %s\n\n", d)
	fmt.Fprintf(w, "| traffic | outcome | requests |\n|---|---|---:|\n")
	classes := make([]string, 0, len(t.counts))
	for c := range t.counts {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	for _, c := range classes {
		keys := make([]string, 0, len(t.counts[c]))
		for k := range t.counts[c] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if strings.HasPrefix(k, defect) {
				pass = false
			}
			fmt.Fprintf(w, "| %s | %s | %d |\n", c, k, t.counts[c][k])
		}
	}
	fmt.Fprintf(w, "\n| fault | times |\n|---|---:|\n")
	fs := make([]string, 0, len(t.faults))
	for f := range t.faults {
		fs = append(fs, f)
	}
	sort.Strings(fs)
	for _, f := range fs {
		fmt.Fprintf(w, "| %s | %d |\n", f, t.faults[f])
	}
	fmt.Fprintf(w, "\n| minute | RSS MB | fds | goroutines | threads | zombie children | body_temp files |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range t.samples {
		fmt.Fprintf(w, "| %.1f | %.1f | %d | %d | %d | %d | %d |\n", s.at.Minutes(), float64(s.rssKB)/1024, s.fds, s.goroutines, s.threads, s.zombies, s.bodyFiles)
	}
	verdict := func(name string, good bool, value string) {
		mark := "ok"
		if !good {
			mark, pass = "FAIL", false
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", name, value, mark)
	}
	if t.baseline.secs > 0 {
		fmt.Fprintf(w, "\n| window | minute | seconds | requests/s | static | uploads | scanner | other | vs no faults |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, q := range append([]rate{t.baseline}, t.quiet...) {
			fmt.Fprintf(w, "| %s | %.1f | %.0f | %.0f | %.0f | %.1f | %.0f | %.1f | %.2f |\n", q.label, q.at.Minutes(), q.secs, q.perS,
				q.by[gStatic], q.by[gUpload], q.by[gScanner], q.by[gOther], q.perS/t.baseline.perS)
		}
	}
	fmt.Fprintf(w, "\n| check | value | verdict |\n|---|---|---|\n")
	verdict("checksum mismatches", t.mismatch == 0, fmt.Sprint(t.mismatch))
	if t.baseline.secs > 0 && len(t.quiet) > 0 {
		worst := t.quiet[0].perS
		for _, q := range t.quiet {
			worst = min(worst, q.perS)
		}
		r := worst / t.baseline.perS
		verdict("throughput of the slowest quiet window against no faults", r >= 0.9, fmt.Sprintf("%.2f× (%.0f vs %.0f requests/s)", r, worst, t.baseline.perS))
	}
	if post := t.samples[warmIndex(t.samples, d):]; len(post) >= 4 {
		for _, m := range []struct {
			name string
			of   func(sample) float64
		}{
			{"RSS drift after warm-up (KB)", func(s sample) float64 { return float64(s.rssKB) }},
			{"fd drift after warm-up", func(s sample) float64 { return float64(s.fds) }},
			{"goroutine drift after warm-up", func(s sample) float64 { return float64(s.goroutines) }},
			{"thread drift after warm-up", func(s sample) float64 { return float64(s.threads) }},
		} {
			a, b := drift(post, m.of)
			d := 0.0
			if a > 0 {
				d = (b - a) / a * 100
			}
			verdict(m.name, d <= 5, fmt.Sprintf("%+.1f%% (%.0f → %.0f)", d, a, b))
		}
	} else {
		fmt.Fprintf(w, "| drift after warm-up | %d samples after warm-up: too few to tell a leak from the collector's rhythm (run 6 minutes or more) | n/a |\n", len(post))
	}
	zmax := 0
	for _, s := range t.samples {
		zmax = max(zmax, s.zombies)
	}
	verdict("zombie children (most seen at a sample)", zmax == 0, fmt.Sprint(zmax))
	verdict("temp files left after shutdown", len(final.leftFiles) == 0, fmt.Sprintf("%d %s", len(final.leftFiles), strings.Join(first(final.leftFiles, 5), " ")))
	verdict("gantry's exit", final.exitErr == "", orNone(final.exitErr))
	verdict("error-log lines naming a panic or a race", final.panics == 0, fmt.Sprint(final.panics))
	if len(t.examples) > 0 {
		fmt.Fprintf(w, "\nFirst defects:\n\n")
		for _, e := range t.examples {
			fmt.Fprintf(w, "- %s\n", e)
		}
	}
	if len(t.notes) > 0 {
		fmt.Fprintf(w, "\nNotes:\n\n")
		for _, n := range slices.Compact(t.notes) {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
	res := "PASS"
	if !pass {
		res = "FAIL"
	}
	fmt.Fprintf(w, "\n**%s**\n", res)
	return pass
}

// drift compares the mean of the first half of the samples after warm-up (at
// least four) with the mean of the second half: one sample against another
// would measure when the collector last ran, not a leak.
func drift(post []sample, of func(sample) float64) (before, after float64) {
	mean := func(ss []sample) float64 {
		sum := 0.0
		for _, s := range ss {
			sum += of(s)
		}
		return sum / float64(len(ss))
	}
	h := len(post) / 2
	return mean(post[:h]), mean(post[len(post)-h:])
}

// warmIndex is the first sample after warm-up: the first five minutes (the
// issue's measure), or the first quarter of a run shorter than 20 minutes, and
// at least the second sample when there are three.
func warmIndex(ss []sample, d time.Duration) int {
	warm := min(5*time.Minute, d/4)
	for i, s := range ss {
		if s.at >= warm {
			if len(ss) >= 3 {
				return max(i, 1)
			}
			return i
		}
	}
	return len(ss)
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

func orNone(s string) string {
	if s == "" {
		return "clean"
	}
	return s
}

// okAndLoad reads the count of good answers and the time the load has run
// (wall time less the pauses for samples), to measure a window's rate.
func (t *tally) okAndLoad(start time.Time) (int64, [nGroups]int64, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.okN, t.okBy, time.Since(start) - t.paused
}

// Groups of traffic classes for a window's breakdown.
const (
	gStatic = iota
	gUpload
	gScanner
	gOther
	nGroups
)

func group(class string) int {
	switch {
	case class == "static GET":
		return gStatic
	case strings.Contains(class, "POST"):
		return gUpload
	case class == "scanner":
		return gScanner
	}
	return gOther
}

func (t *tally) pause(d time.Duration) {
	t.mu.Lock()
	t.paused += d
	t.mu.Unlock()
}

// measure counts good answers over d of load and returns their rate.
func (t *tally) measure(ctx context.Context, start time.Time, d time.Duration, label string) (rate, bool) {
	n0, by0, l0 := t.okAndLoad(start)
	select {
	case <-ctx.Done():
		return rate{}, false
	case <-time.After(d):
	}
	n1, by1, l1 := t.okAndLoad(start)
	secs := (l1 - l0).Seconds()
	if secs <= 0 {
		return rate{}, false
	}
	var by [nGroups]float64
	for i := range by {
		by[i] = float64(by1[i]-by0[i]) / secs
	}
	return rate{at: time.Since(start), perS: float64(n1-n0) / secs, by: by, secs: secs, label: label}, true
}
