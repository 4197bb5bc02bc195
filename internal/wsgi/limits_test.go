package wsgi

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gantry/internal/config"
	"gantry/internal/peertest"
	"gantry/internal/supervise"
)

// TestMaxMemory has the app allocate past max_memory: the worker must go (its
// request fails), the log and the pool's report must say it was the limit, and
// the next request must be served by a fresh worker.
func TestMaxMemory(t *testing.T) {
	s := startSite(t, Options{App: "testapp:application", Processes: 1, Threads: 2, MaxMemory: config.Size(512 << 20)}, nil)
	_, before := s.get(t, "/pid")
	if resp, body := s.get(t, "/hog?n="+strconv.Itoa(64<<20)); resp.StatusCode != 200 {
		t.Fatalf("64MB under a 512MB limit: %d %q", resp.StatusCode, body)
	}
	resp, body := s.get(t, "/hog?n="+strconv.Itoa(1<<30))
	if resp.StatusCode < 500 {
		t.Fatalf("1GB past a 512MB limit: %d %q, want a 5xx", resp.StatusCode, body)
	}
	peertest.WaitFor(t, 0, "the limit counted", func() bool { return s.h.LimitKills()[supervise.LimitMemory] == 1 })
	if !regexp.MustCompile(`worker ended by its max_memory limit.*status="exit status 86"`).MatchString(s.logs.String()) {
		t.Errorf("log does not say the limit ended the worker:\n%s", s.logs)
	}
	peertest.WaitFor(t, 0, "a fresh worker", func() bool {
		ws := s.h.Workers()
		return len(ws) == 1 && ws[0].State == supervise.StateReady && strconv.Itoa(ws[0].PID) != before
	})
	resp, after := s.get(t, "/pid")
	if resp.StatusCode != 200 || after == before {
		t.Fatalf("after the kill: %d %q (the worker before was %s)", resp.StatusCode, after, before)
	}
	limits, err := os.ReadFile("/proc/" + after + "/limits")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`Max address space\s+536870912\s+536870912`).Match(limits) {
		t.Errorf("the fresh worker's limits:\n%s", limits)
	}
}

// TestWorkerExitMemoryAgrees holds worker.py's exit status for an app out of
// memory to the one the supervisor reads as "max_memory".
func TestWorkerExitMemoryAgrees(t *testing.T) {
	want := "EXIT_MEMORY = " + strconv.Itoa(supervise.ExitMemory)
	if !strings.Contains(workerSource, want) {
		t.Fatalf("worker.py does not define %q", want)
	}
}

// TestDeadWorkerSocketRetried makes one worker unreachable, as one that died a
// moment before the pool noticed: its requests must go to another worker, not
// fail. Found by bench/soak.sh: they got 503.
func TestDeadWorkerSocketRetried(t *testing.T) {
	s := startSite(t, Options{App: "testapp:application", Processes: 2, Threads: 1}, nil)
	socks, err := filepath.Glob(filepath.Join(s.h.dir, "w0-*.sock"))
	if err != nil || len(socks) != 1 {
		t.Fatalf("worker 0's socket in %s: %v %v", s.h.dir, socks, err)
	}
	if err := os.Rename(socks[0], socks[0]+".gone"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		if resp, body := s.get(t, "/pid"); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %q\n%s", i, resp.StatusCode, body, s.logs)
		}
	}
	if !strings.Contains(s.logs.String(), "worker unreachable; trying another") {
		t.Fatalf("no request met the unreachable worker:\n%s", s.logs)
	}
}
