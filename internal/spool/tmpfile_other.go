//go:build !linux

package spool

import (
	"errors"
	"os"
)

var errNoTmpfile = errors.New("spool: O_TMPFILE not supported")

func openTmpfile(string) (*os.File, error) { return nil, errNoTmpfile }
