package supervise

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Limits bound what one spawned process may use: the max_memory and max_cpu keys
// of wsgi, fastcgi_command and cgi routes.
//
// They are resource limits of the process, set with prlimit(2) on the child's pid
// the moment it has started. Go's SysProcAttr sets no rlimits in the child, and
// re-executing gantry (or prlimit(1)) before every CGI script doubles the cost of
// each one; what prlimit leaves open is the time between the child's exec and the
// parent's return from it, while the interpreter is still starting. A cgroup v2
// subtree (memory.max, cpu.max) would limit real memory and a share of the CPU
// instead; gantry does not manage one yet.
type Limits struct {
	// Memory caps the address space (RLIMIT_AS), in bytes; 0 = none. It counts
	// reserved as well as used memory, so it must sit above the process's VSZ.
	Memory int64
	// CPU caps the CPU time the process may use in its life (RLIMIT_CPU): past it
	// the kernel sends SIGXCPU, one second later SIGKILL. For a CGI script that is
	// per request; a worker is replaced once it has used that much. 0 = none.
	CPU time.Duration
}

// ExitMemory is the status gantry's own WSGI worker exits with when the app ran
// out of memory (MemoryError), so that the supervisor can say why it died.
const ExitMemory = 86

// Limit reasons, as the log and the pool's report name them.
const (
	LimitMemory = "max_memory"
	LimitCPU    = "max_cpu"
)

// Set reports whether any limit applies.
func (l Limits) Set() bool { return l.Memory > 0 || l.CPU > 0 }

// Check reports why the limits cannot be set on processes started with cred:
// prlimit(2) on a process of another user or group needs CAP_SYS_RESOURCE, which
// a gantry given only CAP_SETUID and CAP_SETGID lacks, and so does root in a
// container that drops it (Docker's default). Without this check the route
// would start and every process fail to.
func (l Limits) Check(cred *syscall.Credential) error {
	const sysResource = 1 << 24
	if !l.Set() || cred == nil || capEff()&sysResource != 0 {
		return nil
	}
	return errors.New("max_memory and max_cpu on processes run as another user or group need CAP_SYS_RESOURCE, which gantry lacks; " +
		"grant it (systemd AmbientCapabilities=CAP_SYS_RESOURCE, docker run --cap-add SYS_RESOURCE) or remove the limits or the user and group keys")
}

// Apply sets the limits on the running process pid.
func (l Limits) Apply(pid int) error {
	if l.Memory > 0 {
		r := unix.Rlimit{Cur: uint64(l.Memory), Max: uint64(l.Memory)}
		if err := unix.Prlimit(pid, unix.RLIMIT_AS, &r, nil); err != nil {
			return fmt.Errorf("max_memory: prlimit: %w", err)
		}
	}
	if l.CPU > 0 {
		secs := uint64((l.CPU + time.Second - 1) / time.Second)
		r := unix.Rlimit{Cur: secs, Max: secs + 1}
		if err := unix.Prlimit(pid, unix.RLIMIT_CPU, &r, nil); err != nil {
			return fmt.Errorf("max_cpu: prlimit: %w", err)
		}
	}
	return nil
}

// Reason says which limit ended a process that exited with ws after using cpu of
// CPU time: LimitMemory, LimitCPU, or "" when none did (or none is known to).
func (l Limits) Reason(ws syscall.WaitStatus, cpu time.Duration) string {
	switch {
	case l.CPU > 0 && ws.Signaled() && ws.Signal() == syscall.SIGXCPU:
		return LimitCPU
	case l.CPU > 0 && ws.Signaled() && ws.Signal() == syscall.SIGKILL && cpu >= l.CPU.Truncate(time.Second):
		return LimitCPU
	case l.Memory > 0 && ws.Exited() && ws.ExitStatus() == ExitMemory:
		return LimitMemory
	}
	return ""
}

// exitReason is Reason for an exec.Cmd's Wait error.
func (l Limits) exitReason(err error) string {
	var ee *exec.ExitError
	if !l.Set() || !errors.As(err, &ee) {
		return ""
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok {
		return ""
	}
	return l.Reason(ws, ee.UserTime()+ee.SystemTime())
}
