// Package fsroot opens files under a directory with a choice of how symbolic links
// are followed: only inside the directory (os.Root: neither ".." nor a link can
// leave it), only to targets with the link's owner (Apache's SymLinksIfOwnerMatch),
// or always (nginx's and Apache's FollowSymLinks default). Static files and PHP
// scripts are looked up through it, so one site setting decides for both.
package fsroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Mode is a symbolic link policy.
type Mode int

const (
	// Inside follows links only while they stay inside the root.
	Inside Mode = iota
	// Owner also follows a link that leaves the root when the link and its
	// target have the same owner.
	Owner
	// Follow follows every link.
	Follow
)

// ParseMode reads a config value: "inside" (also ""), "owner" or "follow".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "inside":
		return Inside, nil
	case "owner":
		return Owner, nil
	case "follow":
		return Follow, nil
	}
	return Inside, fmt.Errorf("symlinks %q: want \"inside\", \"owner\" or \"follow\"", s)
}

// ErrLinkOwner is returned when Owner mode meets a link whose target has another
// owner.
var ErrLinkOwner = errors.New("symbolic link and its target have different owners")

// Root is an open directory. Names given to its methods are slash-separated and
// relative to it, as os.Root takes them; a name that is not local (absolute, or
// with a ".." that climbs out) is refused in every mode.
type Root struct {
	dir  string
	mode Mode
	in   *os.Root
	// dir again, for openat2 (fd is dirf's, -1 without it); an *os.File so that
	// a Root dropped without Close still closes it when collected, as os.Root does.
	dirf *os.File
	fd   int
}

// Open opens dir with the link policy mode.
func Open(dir string, mode Mode) (*Root, error) {
	in, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		in.Close()
		return nil, err
	}
	r := &Root{dir: abs, mode: mode, in: in, fd: -1}
	if mode == Inside {
		if fd := sameDir(in, dir); fd >= 0 {
			r.dirf, r.fd = os.NewFile(uintptr(fd), dir), fd
		}
	}
	return r, nil
}

// sameDir opens dir again as a descriptor for openat2, or returns -1 if that
// fails or dir was replaced since in was opened.
func sameDir(in *os.Root, dir string) int {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	var st unix.Stat_t
	fi, err := in.Stat(".")
	if err != nil || unix.Fstat(fd, &st) != nil {
		unix.Close(fd)
		return -1
	}
	if in, ok := fi.Sys().(*syscall.Stat_t); !ok || uint64(in.Dev) != uint64(st.Dev) || in.Ino != st.Ino {
		unix.Close(fd)
		return -1
	}
	return fd
}

// Mode returns the root's link policy.
func (r *Root) Mode() Mode { return r.mode }

// Close closes the root's directory descriptors.
func (r *Root) Close() error {
	if r.dirf != nil {
		r.dirf.Close()
	}
	return r.in.Close()
}

// OpenFile opens name as os.Root.OpenFile does, following links by the root's mode.
func (r *Root) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	if r.mode == Inside {
		if f, ok, err := r.openBeneath(name, flag, perm); ok {
			return f, err
		}
		return r.in.OpenFile(name, flag, perm)
	}
	full, err := r.resolve("openat", name)
	if err != nil {
		return nil, err
	}
	return os.OpenFile(full, flag, perm)
}

// Open opens name for reading.
func (r *Root) Open(name string) (*os.File, error) { return r.OpenFile(name, os.O_RDONLY, 0) }

// Stat returns name's file information, following links by the root's mode.
func (r *Root) Stat(name string) (fs.FileInfo, error) {
	if r.mode == Inside {
		if fi, ok, err := r.statBeneath(name); ok {
			return fi, err
		}
		return r.in.Stat(name)
	}
	full, err := r.resolve("statat", name)
	if err != nil {
		return nil, err
	}
	return os.Stat(full)
}

// resolve checks name and returns its path on the file system; in Owner mode it
// walks the name's components and refuses one that is a link whose target has
// another owner.
func (r *Root) resolve(op, name string) (string, error) {
	if name == "" || !filepath.IsLocal(filepath.FromSlash(name)) && name != "." {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	full := filepath.Join(r.dir, filepath.FromSlash(name))
	if r.mode != Owner {
		return full, nil
	}
	cur := r.dir
	for _, part := range strings.Split(filepath.ToSlash(filepath.Clean(filepath.FromSlash(name))), "/") {
		if part == "." || part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		li, err := os.Lstat(cur)
		if err != nil {
			return "", err
		}
		if li.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		ti, err := os.Stat(cur)
		if err != nil {
			return "", err
		}
		if owner(li) != owner(ti) {
			return "", &fs.PathError{Op: op, Path: name, Err: ErrLinkOwner}
		}
	}
	return full, nil
}

func owner(fi fs.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return ^uint32(0)
}
