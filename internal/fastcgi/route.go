package fastcgi

// PHP-style routing: which file a URL runs, and how the path splits around it, like
// Caddy's php_fastcgi and nginx's try_files + fastcgi_split_path_info, minus their
// historical holes (CVE-2019-11043, cgi.fix_pathinfo, Unicode case folding).

import (
	"gantry/internal/fsroot"

	"path"
	"strings"
	"sync"
	"time"
)

// target is where a request goes.
type target struct {
	// redirect, when set, is the path to redirect to (a directory without its slash).
	redirect string
	// scriptName is the URL path of the script (SCRIPT_NAME), pathInfo the rest.
	scriptName, pathInfo string
	// file is the script's path relative to the document root, without a leading "/".
	file string
	// docURI is DOCUMENT_URI: the script's URL path, as nginx's $document_uri is
	// after Debian's fastcgi-php.conf (its try_files sets $uri to the script).
	docURI string
}

// router maps URL paths to scripts under a document root.
type router struct {
	root   *fsroot.Root
	prefix string   // the prefix route's path without its trailing slash; "" otherwise
	split  []string // lower-case ASCII extensions
	index  []string

	// scripts caches, for scriptTTL, the names found to be regular files, as nginx's
	// open_file_cache does: the stat was a tenth of the handler's own CPU time per
	// request. Only hits are kept, so a new script is found at once; a script
	// deleted within the TTL reaches the backend, which answers 404 itself.
	mu      sync.RWMutex
	scripts map[string]time.Time // name → when to stat again
	now     func() time.Time     // time.Now; tests move it forward
}

const (
	scriptTTL = time.Second
	// maxScripts bounds the cache; when full it starts over.
	maxScripts = 1024
)

// routeStatus says why a path has no target.
type routeStatus int

const (
	routeOK routeStatus = iota
	routeBadPath
	routeNotFound
)

// resolve finds the script for the decoded URL path p.
func (rt *router) resolve(p string) (target, routeStatus) {
	if p == "" || p[0] != '/' {
		return target{}, routeBadPath
	}
	for i := 0; i < len(p); i++ {
		// NUL would truncate the name in C; other control bytes (the %0a of
		// CVE-2019-11043) have no business in a path and only feed parser confusion.
		if p[i] < ' ' || p[i] == 0x7f {
			return target{}, routeBadPath
		}
	}
	rel := p
	if rt.prefix != "" {
		rel = strings.TrimPrefix(p, rt.prefix)
		if rel == "" {
			rel = "/"
		}
	}
	clean := path.Clean(rel)
	if strings.HasSuffix(rel, "/") && clean != "/" {
		clean += "/"
	}
	if t, ok := rt.split1(clean); ok {
		return t, routeOK
	}
	fi, err := rt.root.Stat(fileName(clean))
	if err != nil || !fi.IsDir() {
		return target{}, routeNotFound
	}
	if !strings.HasSuffix(p, "/") {
		// From the cleaned path: "//evil.example" must not become a redirect off-site.
		return target{redirect: rt.prefix + strings.TrimSuffix(clean, "/") + "/"}, routeOK
	}
	dir := strings.TrimSuffix(clean, "/") + "/"
	for _, idx := range rt.index {
		if rt.isFile(fileName(dir + idx)) {
			return target{scriptName: rt.prefix + dir + idx, file: fileName(dir + idx), docURI: rt.prefix + dir + idx}, routeOK
		}
	}
	return target{}, routeNotFound
}

// split1 splits clean at the first split extension that ends a path segment, names
// more than the bare extension and is an existing regular file under the root.
// Matching lower-cases ASCII letters only, byte for byte, so an index found in the
// folded copy is always the same index in the original.
func (rt *router) split1(clean string) (target, bool) {
	folded := asciiLower(clean)
	for _, ext := range rt.split {
		for from := 0; ; {
			i := strings.Index(folded[from:], ext)
			if i < 0 {
				break
			}
			end := from + i + len(ext)
			from = end
			if end < len(clean) && clean[end] != '/' {
				continue
			}
			if clean[end-len(ext)-1] == '/' {
				continue // "/uploads/x.jpg/.php": no name before the extension
			}
			script := clean[:end]
			if !rt.isFile(fileName(script)) {
				continue
			}
			return target{scriptName: rt.prefix + script, pathInfo: clean[end:], file: fileName(script),
				docURI: rt.prefix + script}, true
		}
	}
	return target{}, false
}

// isFile reports whether name is a regular file inside the root; os.Root refuses
// names and symlinks that lead out of it.
func (rt *router) isFile(name string) bool {
	now := rt.now()
	rt.mu.RLock()
	until, ok := rt.scripts[name]
	rt.mu.RUnlock()
	if ok && now.Before(until) {
		return true
	}
	fi, err := rt.root.Stat(name)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	rt.mu.Lock()
	if rt.scripts == nil || len(rt.scripts) >= maxScripts {
		rt.scripts = make(map[string]time.Time)
	}
	rt.scripts[name] = now.Add(scriptTTL)
	rt.mu.Unlock()
	return true
}

func fileName(clean string) string {
	name := strings.Trim(clean, "/")
	if name == "" {
		return "."
	}
	return name
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
