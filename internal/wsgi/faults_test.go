package wsgi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
