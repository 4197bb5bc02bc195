package config

import (
	"fmt"
	"os"
	"os/user"
)

// Problemf is a problem with a route's key, for a handler's Validate.
func Problemf(key, format string, args ...any) Problem {
	return Problem{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// CheckDir reports a problem with key when dir is not a directory; what names it
// in the message.
func CheckDir(key, what, dir string) []Problem {
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return []Problem{Problemf(key, "%s %q: %v", what, dir, unwrapPathErr(err))}
	case !fi.IsDir():
		return []Problem{Problemf(key, "%s %q: not a directory", what, dir)}
	}
	return nil
}

// CheckExists reports a problem with key when nothing is at path.
func CheckExists(key, what, path string) []Problem {
	if _, err := os.Stat(path); err != nil {
		return []Problem{Problemf(key, "%s %q: %v", what, path, unwrapPathErr(err))}
	}
	return nil
}

// CheckUser reports a problem with key when name is set and no such user exists.
func CheckUser(key, name string) []Problem {
	if name == "" {
		return nil
	}
	if _, err := user.Lookup(name); err != nil {
		return []Problem{Problemf(key, "user %q: no such user", name)}
	}
	return nil
}
