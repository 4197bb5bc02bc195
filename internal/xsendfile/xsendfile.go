// Package xsendfile lets a FastCGI or WSGI application hand a file back to gantry
// instead of streaming it (lighttpd's and Apache's X-Sendfile, nginx's
// X-Accel-Redirect): the application checks permissions and answers with a header
// naming the file, and gantry serves it with its static file handler — Range,
// ETag and 304, sendfile(2) — while the application's worker is already free.
//
// Only files under the route's sendfile_root are served: X-Sendfile names an
// absolute path that must lie inside it, X-Accel-Redirect a URL path taken
// relative to it. Anything else is refused with 404 and a log line, never served.
package xsendfile

import (
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"

	"gantry/internal/static"
)

// Handler wraps an application's handler.
type Handler struct {
	next  http.Handler
	root  string
	files *static.Handler
	log   *slog.Logger
}

// New serves next, answering its X-Sendfile and X-Accel-Redirect responses with
// files from root through files (a static handler rooted at root, mounted at "/").
func New(next http.Handler, root string, files *static.Handler, log *slog.Logger) *Handler {
	return &Handler{next: next, root: filepath.Clean(root), files: files, log: log}
}

// headers the application's response loses when a file replaces its body: the
// file's own decide them.
var bodyHeaders = []string{"Content-Length", "Content-Type", "Content-Range", "Content-Encoding",
	"Etag", "Last-Modified", "Accept-Ranges", "Transfer-Encoding"}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	iw := &interceptor{ResponseWriter: w}
	h.next.ServeHTTP(iw, r)
	// An application may name the file and return without a body or a status.
	iw.decide()
	if iw.target == "" {
		return
	}
	rel, ok := h.resolve(iw.header, iw.target)
	hdr := w.Header()
	if !ok {
		h.log.Warn("xsendfile: the application named a file outside sendfile_root; answering 404",
			"header", iw.header, "file", iw.target, "sendfile_root", h.root, "uri", r.RequestURI)
		for _, k := range bodyHeaders {
			delete(hdr, k)
		}
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	for _, k := range bodyHeaders {
		delete(hdr, k)
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path, u.RawPath, u.RawQuery = rel, "", ""
	r2.URL = &u
	// As nginx's X-Accel-Redirect: the file is fetched with GET whatever the
	// application answered (a POST that checks a form, say).
	if r.Method != http.MethodHead {
		r2.Method = http.MethodGet
	}
	r2.Body, r2.ContentLength = http.NoBody, 0
	h.files.ServeHTTP(w, r2)
}

// resolve maps a header's value to a path under the root ("/a/b.zip"), or false.
func (h *Handler) resolve(header, v string) (string, bool) {
	if strings.ContainsAny(v, "\x00\\") {
		return "", false
	}
	var rel string
	if header == "X-Sendfile" {
		if !filepath.IsAbs(v) {
			return "", false
		}
		r, err := filepath.Rel(h.root, filepath.Clean(v))
		if err != nil || !filepath.IsLocal(r) {
			return "", false
		}
		rel = r
	} else {
		if !strings.HasPrefix(v, "/") {
			return "", false
		}
		v, _, _ = strings.Cut(v, "?")
		rel = strings.TrimPrefix(v, "/")
		if rel == "" || !filepath.IsLocal(rel) {
			return "", false
		}
	}
	rel = filepath.Clean(rel)
	if rel == "." {
		return "", false
	}
	return "/" + filepath.ToSlash(rel), true
}

// interceptor holds back a response that names a file; any other goes through.
type interceptor struct {
	http.ResponseWriter
	decided bool
	header  string // which header named the file
	target  string
}

func (i *interceptor) decide() {
	if i.decided {
		return
	}
	i.decided = true
	hdr := i.ResponseWriter.Header()
	for _, k := range [...]string{"X-Sendfile", "X-Accel-Redirect"} {
		if v, ok := hdr[k]; ok {
			delete(hdr, k)
			if len(v) > 0 && i.target == "" {
				i.header, i.target = k, v[0]
			}
		}
	}
}

func (i *interceptor) WriteHeader(code int) {
	if code >= 100 && code < 200 && !i.decided {
		i.ResponseWriter.WriteHeader(code)
		return
	}
	i.decide()
	if i.target == "" {
		i.ResponseWriter.WriteHeader(code)
	}
}

func (i *interceptor) Write(b []byte) (int, error) {
	i.decide()
	if i.target != "" {
		return len(b), nil
	}
	return i.ResponseWriter.Write(b)
}

// ReadFrom keeps sendfile for the application's own file responses
// (wsgi.file_wrapper).
func (i *interceptor) ReadFrom(src io.Reader) (int64, error) {
	i.decide()
	if i.target != "" {
		return io.Copy(io.Discard, src)
	}
	if rf, ok := i.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{i.ResponseWriter}, src)
}

func (i *interceptor) Flush() {
	i.decide()
	if i.target != "" {
		return
	}
	if f, ok := i.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (i *interceptor) Unwrap() http.ResponseWriter { return i.ResponseWriter }

type writerOnly struct{ io.Writer }
