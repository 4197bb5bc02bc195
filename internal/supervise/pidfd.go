package supervise

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// WaitExited returns once the process behind pidfd (a pidfd opened with
// PIDFD_NONBLOCK, made an *os.File so that Go's poller watches it) has exited,
// without reaping it. It parks the goroutine, not an OS thread: a blocking
// wait holds a thread per live child, and Go never gives an idle thread
// back, so every peak of children (a reload overlapping two pools) would
// leave the process with more threads for good. An error means the pidfd
// cannot be watched; the caller falls back to a blocking wait.
func WaitExited(pidfd *os.File) error {
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Read(func(fd uintptr) bool {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 0)
		return err != nil && err != syscall.EINTR || n > 0
	})
}
