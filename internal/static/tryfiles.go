package static

import (
	"io/fs"
	"net/http"
	"strings"

	"gantry/internal/fsroot"
)

// TryFiles is nginx's try_files over a directory: each entry but the last is a
// candidate, "{path}" standing for the request's path, tried as a file (or, ending
// in "/", as a directory); the last is the path a request continues as when no
// candidate exists, or "=404". A site's try_files (in front of its PHP front
// controller) and a static route's (single-page apps) both resolve through it.
type TryFiles struct {
	tries    []string
	fallback string
}

// NewTryFiles returns the list for entries that config.TryFilesProblem accepts,
// or nil when there are none.
func NewTryFiles(entries []string) *TryFiles {
	n := len(entries)
	if n == 0 {
		return nil
	}
	return &TryFiles{tries: entries[:n-1], fallback: entries[n-1]}
}

// Fallback is the last entry: the path tried last, or "=404".
func (t *TryFiles) Fallback() string { return t.fallback }

// Resolve returns the path a request for p (normalised, starting with "/")
// continues as, or "" when p itself is to be served; status is 404 when nothing
// matched and the fallback is "=404". A candidate is looked up in root, so with
// the link policy that serves it. When a "{path}/" candidate is a directory and
// p asks for one, dirIndex(dir) gives the path to continue as ("" for p itself).
func (t *TryFiles) Resolve(root *fsroot.Root, p string, dirIndex func(dir string) string) (np string, status int) {
	for _, c := range t.tries {
		name := strings.ReplaceAll(c, "{path}", p)
		fi, err := stat(root, name)
		if err != nil {
			continue
		}
		if !strings.HasSuffix(c, "/") {
			if !fi.Mode().IsRegular() {
				continue
			}
			if name == p {
				return "", 0
			}
			return name, 0
		}
		if !fi.IsDir() {
			continue
		}
		if !strings.HasSuffix(p, "/") {
			return "", 0 // the directory is redirected to its slash, as nginx does
		}
		return dirIndex(name), 0
	}
	if t.fallback == "=404" {
		return "", http.StatusNotFound
	}
	return strings.ReplaceAll(t.fallback, "{path}", p), 0
}

// stat looks up a slash-separated path, its runs of slashes merged, in root.
func stat(root *fsroot.Root, name string) (fs.FileInfo, error) {
	return root.Stat(fileName(name))
}
