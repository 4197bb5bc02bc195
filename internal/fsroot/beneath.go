package fsroot

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// os.Root resolves a name a component at a time: an open and a close for every
// directory on the way. openat2(2) with RESOLVE_BENEATH has the kernel enforce the
// same rule (no "..", absolute link or link target outside the root) in one
// system call, so Inside roots use it for names below the top level; a kernel
// without it (or a seccomp filter refusing it) falls back to os.Root for good.

// noOpenat2 is set once openat2 turns out to be unavailable.
var noOpenat2 atomic.Bool

// errEscapes is the error a name leaving the root gets, worded as os.Root's.
var errEscapes = errors.New("path escapes from parent")

const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS

// openBeneath opens name below the root's descriptor. ok is false when the
// caller must use os.Root instead: a top-level name (os.Root opens it in one
// call already) or no openat2.
func (r *Root) openBeneath(name string, flag int, perm os.FileMode) (f *os.File, ok bool, err error) {
	fd, ok, err := r.beneathFD(name, uint64(flag|unix.O_CLOEXEC), perm)
	if !ok || err != nil {
		return nil, ok, err
	}
	return os.NewFile(uintptr(fd), name), true, nil
}

// statBeneath is Stat through an O_PATH descriptor: it follows a final link
// (inside the root) as os.Root.Stat does.
func (r *Root) statBeneath(name string) (fi fs.FileInfo, ok bool, err error) {
	fd, ok, err := r.beneathFD(name, unix.O_PATH|unix.O_CLOEXEC, 0)
	if !ok || err != nil {
		return nil, ok, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	fi, err = f.Stat()
	return fi, true, err
}

func (r *Root) beneathFD(name string, flags uint64, perm os.FileMode) (int, bool, error) {
	if r.fd < 0 || noOpenat2.Load() || !strings.Contains(name, "/") {
		return -1, false, nil
	}
	how := unix.OpenHow{Flags: flags, Resolve: beneath}
	if flags&(unix.O_CREAT|unix.O_TMPFILE) != 0 {
		how.Mode = uint64(perm.Perm())
	}
	for range 4 {
		fd, err := unix.Openat2(r.fd, name, &how)
		switch {
		case err == nil:
			return fd, true, nil
		case err == unix.EINTR, err == unix.EAGAIN:
			// EAGAIN: a rename or mount raced the lookup; the kernel asks for a retry.
			continue
		case err == unix.ENOSYS, err == unix.EPERM && !strings.Contains(name, ".."):
			// EPERM for a plain name is a seccomp filter, not the file's mode
			// (that is EACCES).
			noOpenat2.Store(true)
			return -1, false, nil
		case err == unix.EXDEV:
			return -1, true, &fs.PathError{Op: "openat2", Path: name, Err: errEscapes}
		default:
			return -1, true, &fs.PathError{Op: "openat2", Path: name, Err: err}
		}
	}
	return -1, false, nil
}
