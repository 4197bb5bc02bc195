package spool

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

var errNoTmpfile = errors.New("spool: O_TMPFILE not supported")

// openTmpfile makes an unnamed file in dir. Kernels or file systems without
// O_TMPFILE answer EISDIR (the flag includes O_DIRECTORY) or EOPNOTSUPP.
func openTmpfile(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDWR|unix.O_TMPFILE, 0o600)
	if err != nil && (errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)) {
		return nil, errNoTmpfile
	}
	return f, err
}
