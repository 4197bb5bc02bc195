package supervise

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// TestPrivateTmp checks each worker's TMPDIR: its own (workers started at once
// from one shared environment slice, as the gateways build them), there while
// it runs, gone with it. Found by bench/soak.sh: two workers appended to the
// same slice, one got the other's directory, and when that worker was killed
// php-cgi lost its temp directory and saw every request body empty.
func TestPrivateTmp(t *testing.T) {
	shared := make([]string, 0, 64)
	shared = append(shared, os.Environ()...)
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(context.Background(), Options{
		Name: "tmp", Size: 6, PrivateTmp: true,
		Command: func(w *Worker) (*exec.Cmd, error) {
			cmd := exec.Command(sleep, "600")
			cmd.Env = shared
			return cmd, nil
		},
		StopTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	tmpOf := func(pid int) string {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatal(err)
		}
		var dir string
		for _, kv := range bytes.Split(env, []byte{0}) {
			if v, ok := strings.CutPrefix(string(kv), "TMPDIR="); ok {
				dir = v // the last one wins, as getenv finds it
			}
		}
		return dir
	}
	seen := map[string]int{}
	for _, w := range p.Workers() {
		dir := tmpOf(w.PID)
		if other, ok := seen[dir]; ok {
			t.Fatalf("workers %d and %d share TMPDIR %s", other, w.PID, dir)
		}
		seen[dir] = w.PID
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || filepath.Dir(dir) != p.tmpRoot {
			t.Fatalf("worker %d: TMPDIR %s: %v (want a directory under %s)", w.PID, dir, err, p.tmpRoot)
		}
	}
	victim := p.Workers()[0].PID
	dir := tmpOf(victim)
	if err := os.WriteFile(filepath.Join(dir, "left"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(victim, syscall.SIGKILL)
	peertest.WaitFor(t, 0, "the killed worker's TMPDIR removed", func() bool {
		_, err := os.Stat(dir)
		return os.IsNotExist(err)
	})
	for _, w := range p.Workers() {
		if w.PID != victim {
			if _, err := os.Stat(tmpOf(w.PID)); err != nil {
				t.Errorf("worker %d lost its TMPDIR with the killed one: %v", w.PID, err)
			}
		}
	}
	root := p.tmpRoot
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("%s left after Shutdown: %v", root, err)
	}
}
