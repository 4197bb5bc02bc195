package supervise

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gantry/internal/peertest"
)

func TestLimitsReason(t *testing.T) {
	both := Limits{Memory: 256 << 20, CPU: 2 * time.Second}
	signaled := func(s syscall.Signal) syscall.WaitStatus { return syscall.WaitStatus(s) }
	exited := func(code int) syscall.WaitStatus { return syscall.WaitStatus(code << 8) }
	cases := []struct {
		name   string
		limits Limits
		ws     syscall.WaitStatus
		cpu    time.Duration
		want   string
	}{
		{"SIGXCPU under max_cpu", both, signaled(syscall.SIGXCPU), 2 * time.Second, LimitCPU},
		{"SIGKILL after using the CPU time (SIGXCPU ignored)", both, signaled(syscall.SIGKILL), 3 * time.Second, LimitCPU},
		{"SIGKILL with CPU time to spare is someone else's", both, signaled(syscall.SIGKILL), 100 * time.Millisecond, ""},
		{"SIGXCPU without max_cpu", Limits{Memory: 256 << 20}, signaled(syscall.SIGXCPU), 0, ""},
		{"the worker's out-of-memory exit", both, exited(ExitMemory), 0, LimitMemory},
		{"the same status without max_memory", Limits{CPU: time.Second}, exited(ExitMemory), 0, ""},
		{"a plain crash", both, exited(1), 0, ""},
		{"a clean exit", both, exited(0), 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.limits.Reason(tc.ws, tc.cpu); got != tc.want {
				t.Errorf("Reason = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestLimitsBeforeTheWorkerRuns starts workers under max_cpu that record, first
// thing, the limit of a process they fork: each must have it. Set once the
// worker runs, the limit would miss what it forked at once.
func TestLimitsBeforeTheWorkerRuns(t *testing.T) {
	dir := t.TempDir()
	p, err := Start(context.Background(), Options{
		Name: "limits", Size: 8, Limits: Limits{CPU: 5 * time.Second},
		Command: func(w *Worker) (*exec.Cmd, error) {
			out := filepath.Join(dir, strconv.Itoa(w.Slot))
			return exec.Command("/bin/sh", "-c", `grep "^Max cpu time" /proc/self/limits > "$1.tmp" && mv "$1.tmp" "$1"; exec sleep 600`, "sh", out), nil
		},
		StopTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	for i := range 8 {
		out := filepath.Join(dir, strconv.Itoa(i))
		peertest.WaitFor(t, 20*time.Second, "worker "+strconv.Itoa(i)+"'s report", func() bool {
			_, err := os.Stat(out)
			return err == nil
		})
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(strings.Fields(string(b)), " "); got != "Max cpu time 5 6 seconds" {
			t.Errorf("worker %d forked a process with %q, want max cpu time 5 6 seconds", i, got)
		}
	}
}

// TestLimitsUnderAnInheritedOne applies max_cpu above the hard limit a process
// already has (gantry's own, from systemd's LimitCPU or a ulimit, which its
// children inherit): raising a hard limit needs CAP_SYS_RESOURCE, so the
// process must start with the lower of the two, not fail to start at all.
func TestLimitsUnderAnInheritedOne(t *testing.T) {
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid
	inherited := unix.Rlimit{Cur: 1000, Max: 1000}
	if err := unix.Prlimit(pid, unix.RLIMIT_CPU, &inherited, nil); err != nil {
		t.Fatal(err)
	}
	if err := (Limits{CPU: 2000 * time.Second}).Apply(pid); err != nil {
		t.Fatalf("max_cpu above the inherited hard limit: %v", err)
	}
	var got unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_CPU, nil, &got); err != nil {
		t.Fatal(err)
	}
	if got.Cur != 1000 || got.Max != 1000 {
		t.Errorf("RLIMIT_CPU = %d/%d, want the inherited 1000/1000 kept", got.Cur, got.Max)
	}
}
