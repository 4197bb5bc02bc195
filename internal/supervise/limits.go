package supervise

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Limits bound what one spawned process may use: the max_memory and max_cpu keys
// of wsgi, fastcgi_command and cgi routes.
//
// They are resource limits of the process, set with prlimit(2) on the child's pid.
// Go's SysProcAttr sets no rlimits in the child, and re-executing gantry (or
// prlimit(1)) before every CGI script doubles the cost of each one. Set once the
// process runs, they would miss what it forked first (a shell script's first
// command, most of the time on a busy machine), so the child is started traced
// (PTRACE_TRACEME): it stops at its exec before running an instruction of its
// own, gets its limits, and is let go (see StartTraced). Where ptrace is
// forbidden (a seccomp profile), the limits are set just after the exec instead,
// and what the process forks at once may escape them. A cgroup v2 subtree
// (memory.max, cpu.max) would limit real memory and a share of the CPU instead;
// gantry does not manage one yet.
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

// Apply sets the limits on the running process pid. A limit above the hard one
// the process already has (gantry's own, from systemd's LimitAS or LimitCPU,
// which it inherited) leaves that one: raising it would need CAP_SYS_RESOURCE,
// and the lower limit is the stricter anyway.
func (l Limits) Apply(pid int) error {
	if l.Memory > 0 {
		if err := lower(pid, unix.RLIMIT_AS, uint64(l.Memory), uint64(l.Memory)); err != nil {
			return fmt.Errorf("max_memory: prlimit: %w", err)
		}
	}
	if l.CPU > 0 {
		secs := uint64((l.CPU + time.Second - 1) / time.Second)
		if err := lower(pid, unix.RLIMIT_CPU, secs, secs+1); err != nil {
			return fmt.Errorf("max_cpu: prlimit: %w", err)
		}
	}
	return nil
}

// lower sets resource res of pid to cur and max, neither above its hard limit.
func lower(pid, res int, cur, max uint64) error {
	var old unix.Rlimit
	if err := unix.Prlimit(pid, res, nil, &old); err != nil {
		return err
	}
	r := unix.Rlimit{Cur: min(cur, old.Max), Max: min(max, old.Max)}
	return unix.Prlimit(pid, res, &r, nil)
}

// Traced reports whether processes under l start traced: limits are set and
// this system lets gantry trace its children.
func (l Limits) Traced() bool { return l.Set() && traceable() }

// traceable reports whether a child may PTRACE_TRACEME, tried once on a child of
// gantry's own binary that is killed at its exec, before it runs.
var traceable = sync.OnceValue(func() bool {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid, err := syscall.ForkExec("/proc/self/exe", []string{"gantry-ptrace-probe"},
		&syscall.ProcAttr{Sys: &syscall.SysProcAttr{Ptrace: true, Setpgid: true}})
	if err != nil {
		return false
	}
	syscall.Kill(pid, syscall.SIGKILL)
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, syscall.WALL, nil); err != syscall.EINTR && !ws.Stopped() {
			break
		}
	}
	return true
})

// StartTraced finishes starting pid, a child forked with SysProcAttr.Ptrace from
// the calling OS thread (locked since before the fork) and stopping at its exec:
// it sets the limits, then lets the process run, so that everything it does and
// forks is under them. On an error the process is killed; reaped tells whether
// it has also been reaped (it died before stopping), else the caller reaps it.
func (l Limits) StartTraced(pid int) (reaped bool, err error) {
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, syscall.WALL, nil)
		if err != syscall.EINTR {
			break
		}
	}
	switch {
	case err != nil:
		syscall.Kill(pid, syscall.SIGKILL)
		return false, fmt.Errorf("wait for the process at its exec: %w", err)
	case !ws.Stopped():
		return true, fmt.Errorf("the process ended before its limits were set (status %v)", ws)
	}
	if err = l.Apply(pid); err != nil {
		// Killed while still stopped: it never runs without its limits.
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if derr := syscall.PtraceDetach(pid); derr != nil && err == nil {
		syscall.Kill(pid, syscall.SIGKILL)
		err = fmt.Errorf("ptrace detach: %w", derr)
	}
	return false, err
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
