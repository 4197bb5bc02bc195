package cgi

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gantry/internal/supervise"
)

// Why a script is being terminated; the first reason wins and decides the status the
// client gets when no header has been sent yet.
type killReason int

const (
	notKilled killReason = iota
	killTimeout
	killClient
	killShutdown
	killBody
	killAbandon // the response header was bad: the script's output is no longer wanted
)

// proc is one running script. The goroutine serving the request is the only one that
// reaps it; kills come from timers and other goroutines. Reaping waits for the exit
// first without reaping (WNOWAIT) and then reaps under mu, so a kill sent under mu
// always reaches this script's process group and never one that has reused its pid.
type proc struct {
	pid    int
	grace  time.Duration
	stdout *os.File
	stderr *os.File
	// pidfd is the script's pidfd, readable once it has exited: waiting on it
	// parks the goroutine in the poller instead of holding a thread in waitid.
	// -1 where the kernel has no pidfds. It goes into the poller, as exited,
	// only when the script has not exited by the time it is reaped: most have.
	pidfd  int
	exited *os.File

	mu        sync.Mutex
	reaped    bool
	cpu       time.Duration // the CPU time it used, once reaped
	reason    killReason
	timeout   *time.Timer
	killTimer *time.Timer
	// onTerminate unblocks a write to a client that stopped reading.
	onTerminate func()
}

// spawn starts the script with only stdin, stdout and stderr open and in its own
// process group, so that a timeout can kill everything it started. It execs the
// file directly (the kernel handles "#!"), never through a shell, with argv holding
// only the script's path: nothing from the query string reaches the command line
// (CVE-2012-1823).
func spawn(file string, env []string, stdin uintptr, cred *syscall.Credential, limits supervise.Limits) (*proc, error) {
	var out, errp [2]int
	if err := syscall.Pipe2(out[:], syscall.O_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	if err := syscall.Pipe2(errp[:], syscall.O_CLOEXEC); err != nil {
		syscall.Close(out[0])
		syscall.Close(out[1])
		return nil, os.NewSyscallError("pipe2", err)
	}
	pidfd := -1
	attr := &syscall.ProcAttr{
		Dir:   filepath.Dir(file),
		Env:   env,
		Files: []uintptr{stdin, uintptr(out[1]), uintptr(errp[1])},
		Sys:   &syscall.SysProcAttr{Setpgid: true, Credential: cred, PidFD: &pidfd},
	}
	traced := limits.Traced()
	if traced {
		// The script stops at its exec until its limits are set: whatever it
		// forks first has them too. The tracer is the thread that forked.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		attr.Sys.Ptrace = true
	}
	pid, err := syscall.ForkExec(file, []string{file}, attr)
	syscall.Close(out[1])
	syscall.Close(errp[1])
	if err != nil {
		syscall.Close(out[0])
		syscall.Close(errp[0])
		return nil, &os.PathError{Op: "exec", Path: file, Err: err}
	}
	if limits.Set() {
		reaped := false
		if traced {
			reaped, err = limits.StartTraced(pid)
		} else {
			err = limits.Apply(pid)
		}
		if err != nil {
			syscall.Kill(-pid, syscall.SIGKILL)
			if !reaped {
				var ws syscall.WaitStatus
				syscall.Wait4(pid, &ws, 0, nil)
			}
			if pidfd >= 0 {
				syscall.Close(pidfd)
			}
			syscall.Close(out[0])
			syscall.Close(errp[0])
			return nil, err
		}
	}
	// Non-blocking read ends go into Go's poller: reads take deadlines and park the
	// goroutine instead of a thread.
	syscall.SetNonblock(out[0], true)
	syscall.SetNonblock(errp[0], true)
	// A pidfd from clone is close-on-exec already.
	return &proc{
		pid:    pid,
		pidfd:  pidfd,
		stdout: os.NewFile(uintptr(out[0]), "cgi stdout"),
		stderr: os.NewFile(uintptr(errp[0]), "cgi stderr"),
	}, nil
}

// terminate starts ending the script's process group: SIGTERM now, SIGKILL after the
// grace period. It stops the request's reads of the script's output at once.
func (p *proc) terminate(why killReason) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped || p.reason != notKilled {
		return
	}
	p.reason = why
	syscall.Kill(-p.pid, syscall.SIGTERM)
	p.killTimer = time.AfterFunc(p.grace, p.kill)
	p.stdout.SetReadDeadline(time.Now())
	if p.onTerminate != nil {
		p.onTerminate()
	}
}

func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.reaped {
		syscall.Kill(-p.pid, syscall.SIGKILL)
	}
}

func (p *proc) killReason() killReason {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reason
}

// reap waits for the script to exit and collects it. beforeWait runs when the script
// is still running, before reap blocks. A terminated script's group gets SIGKILL once
// its leader is gone, so that no child it left behind lingers.
func (p *proc) reap(beforeWait func()) syscall.WaitStatus {
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	p.mu.Lock()
	if p.reason == notKilled {
		// The common case: the script closed its output by exiting.
		if pid, _ := syscall.Wait4(p.pid, &ws, syscall.WNOHANG, &ru); pid == p.pid {
			p.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			p.reapedLocked()
			p.mu.Unlock()
			return ws
		}
	}
	p.mu.Unlock()
	if beforeWait != nil {
		beforeWait()
	}
	p.waitExit()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reason != notKilled {
		syscall.Kill(-p.pid, syscall.SIGKILL)
	}
	for {
		_, err := syscall.Wait4(p.pid, &ws, 0, &ru)
		if err != syscall.EINTR {
			break
		}
	}
	p.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	p.reapedLocked()
	return ws
}

// waitExit returns once the script has exited, without reaping it.
func (p *proc) waitExit() {
	if p.pidfd >= 0 && p.exited == nil {
		syscall.SetNonblock(p.pidfd, true)
		p.exited = os.NewFile(uintptr(p.pidfd), "cgi pidfd")
	}
	if p.exited != nil && supervise.WaitExited(p.exited) == nil {
		return
	}
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != syscall.EINTR {
			break
		}
	}
}

func (p *proc) reapedLocked() {
	p.reaped = true
	if p.exited != nil {
		p.exited.Close()
	} else if p.pidfd >= 0 {
		syscall.Close(p.pidfd)
	}
	p.pidfd = -1
	if p.timeout != nil {
		p.timeout.Stop()
	}
	if p.killTimer != nil {
		p.killTimer.Stop()
	}
}

// tryRead reads what the pipe holds without waiting for more. wouldBlock reports
// that the script has written nothing new yet, the moment to flush to the client.
func tryRead(rc syscall.RawConn, b []byte) (n int, wouldBlock bool, err error) {
	rerr := rc.Read(func(fd uintptr) bool {
		for {
			n, err = syscall.Read(int(fd), b)
			if err != syscall.EINTR {
				break
			}
		}
		return true
	})
	switch {
	case rerr != nil:
		return 0, false, rerr
	case err == syscall.EAGAIN:
		return 0, true, nil
	case err != nil:
		return 0, false, err
	case n == 0:
		return 0, false, io.EOF
	}
	return n, false, nil
}

// exitError describes how a script ended, for the log.
func exitError(ws syscall.WaitStatus) error {
	switch {
	case ws.Signaled():
		return errors.New("killed by " + ws.Signal().String())
	case ws.Exited() && ws.ExitStatus() != 0:
		return errors.New("exit status " + strconv.Itoa(ws.ExitStatus()))
	}
	return nil
}
