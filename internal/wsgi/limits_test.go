package wsgi

import (
	"os"
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
