package config

import (
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"
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

// CheckLimits reports a max_memory or max_cpu that cannot work: negative, a
// memory cap too small for any interpreter to start in, a CPU cap under the
// one-second grain of RLIMIT_CPU.
func CheckLimits(memory int64, cpu time.Duration) []Problem {
	var probs []Problem
	if memory < 0 || (memory > 0 && memory < 16<<20) {
		probs = append(probs, Problemf("max_memory", "max_memory %d: want at least 16MB (it caps the address space, which an interpreter reserves generously), or 0 for none", memory))
	}
	if cpu < 0 || (cpu > 0 && cpu < time.Second) {
		probs = append(probs, Problemf("max_cpu", "max_cpu %s: want whole seconds of CPU time, at least \"1s\", or 0 for none", cpu))
	}
	return probs
}

// CheckGroup reports a group key that names no group.
func CheckGroup(key, name string) []Problem {
	if name == "" {
		return nil
	}
	if _, err := user.LookupGroup(name); err != nil {
		return []Problem{Problemf(key, "group %q: no such group", name)}
	}
	return nil
}

// TryFilesProblem returns what is wrong with entry, the last of a try_files list
// when last is set, or "" when nothing is. Site and static route try_files share it.
func TryFilesProblem(entry string, last bool) string {
	switch {
	case entry == "=404" && last:
		return ""
	case entry == "=404":
		return fmt.Sprintf("try_files %q: \"=404\" can only be the last entry", entry)
	case !strings.HasPrefix(entry, "/") && !strings.HasPrefix(entry, "{path}"):
		return fmt.Sprintf("try_files %q: want \"{path}\", \"{path}/\", a path like \"/index.html\" or \"=404\"", entry)
	case strings.ContainsAny(entry, "?#\\\x00") || strings.Contains(entry, "/.."):
		return fmt.Sprintf("try_files %q: a clean path without query (the request's query string is kept)", entry)
	}
	return ""
}
