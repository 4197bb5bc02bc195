package supervise

import (
	"syscall"
	"testing"
	"time"
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
