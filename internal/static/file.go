package static

import (
	"gantry/internal/fsroot"

	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// rep is one representation of a file: the file itself or a precompressed sibling,
// with every response header value computed once. Header slices have cap == len so
// a middleware that appends to one copies instead of writing into the shared array.
type rep struct {
	enc     int
	size    int64
	modTime time.Time // truncated to seconds, as Last-Modified and If-Modified-Since carry
	etag    string
	body    []byte  // contents; for a pooled rep only the first headLen bytes
	pool    *fdPool // open descriptors of a file too large to hold in memory

	hType, hLength, hETag, hLastMod, hEncoding []string
}

func newRep(ctype string, fi os.FileInfo, enc int) *rep {
	size := fi.Size()
	mt := fi.ModTime()
	b := make([]byte, 0, 48)
	b = append(b, '"')
	b = strconv.AppendInt(b, mt.UnixNano(), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, size, 16)
	if enc != encIdentity {
		b = append(b, '-')
		b = append(b, encodingNames[enc]...)
	}
	b = append(b, '"')
	p := &rep{
		enc:      enc,
		size:     size,
		modTime:  mt.Truncate(time.Second),
		etag:     string(b),
		hType:    []string{ctype},
		hLength:  []string{strconv.FormatInt(size, 10)},
		hLastMod: []string{mt.UTC().Format(http.TimeFormat)},
	}
	p.hETag = []string{p.etag}
	if enc != encIdentity {
		p.hEncoding = []string{encodingNames[enc]}
	}
	return p
}

// fileSig identifies one version of a file; the zero value means "absent".
type fileSig struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

func sigOf(fi os.FileInfo) fileSig {
	dev, ino := devIno(fi)
	return fileSig{dev: dev, ino: ino, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}

// located is a regular file a request path resolved to, opened.
type located struct {
	name string // path inside the root, without a leading slash
	f    *os.File
	fi   os.FileInfo
}

// lookupError carries the status a failed lookup answers with.
type lookupError struct {
	status int
	err    error
}

func (e *lookupError) Error() string { return e.err.Error() }
func (e *lookupError) Unwrap() error { return e.err }

// errNoIndex is a directory without an index file: listed with browse, else 403.
var errNoIndex = errors.New("directory has no index file")

var errRedirectDir = errors.New("directory requested without trailing slash")

// fileName turns a validated request path into a name inside the root: no leading
// or trailing slash, runs of slashes merged (as nginx's merge_slashes does).
func fileName(rel string) string {
	name := strings.Trim(rel, "/")
	for strings.Contains(name, "//") {
		name = strings.ReplaceAll(name, "//", "/")
	}
	if name == "" {
		return "."
	}
	return name
}

// locate opens the regular file that rel names: the file itself, or for a path
// ending in "/" the first index file of that directory. A directory named without
// the trailing slash gives errRedirectDir.
func (h *Handler) locate(st *rootState, rel string) (located, error) {
	name := fileName(rel)
	wantDir := rel == "" || strings.HasSuffix(rel, "/")
	f, fi, err := openRegularOrDir(st.root, name)
	if err != nil {
		return located{}, err
	}
	if !fi.IsDir() {
		if wantDir && rel != "" {
			f.Close()
			return located{}, &lookupError{http.StatusNotFound, errors.New("file requested as a directory")}
		}
		return located{name: name, f: f, fi: fi}, nil
	}
	f.Close()
	if rel == "" || !strings.HasSuffix(rel, "/") {
		return located{}, errRedirectDir
	}
	for _, idx := range h.opts.Index {
		iname := idx
		if name != "." {
			iname = name + "/" + idx
		}
		f, fi, err := openRegularOrDir(st.root, iname)
		if err != nil {
			var le *lookupError
			if errors.As(err, &le) && le.status == http.StatusNotFound {
				continue
			}
			return located{}, err
		}
		if fi.IsDir() {
			f.Close()
			continue
		}
		return located{name: iname, f: f, fi: fi}, nil
	}
	// nginx answers a directory without an index (and without autoindex) 403.
	return located{}, &lookupError{http.StatusForbidden, errNoIndex}
}

// openRegularOrDir opens name inside root; anything but a regular file or a
// directory (FIFO, device, socket) is 404. O_NONBLOCK keeps opening a FIFO from
// blocking the request forever; regular files ignore it.
func openRegularOrDir(root *fsroot.Root, name string) (*os.File, os.FileInfo, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, classify(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, &lookupError{http.StatusInternalServerError, err}
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		f.Close()
		return nil, nil, &lookupError{http.StatusNotFound, errors.New("not a regular file")}
	}
	return f, fi, nil
}

// classify maps an open error to the status a client gets. os.Root reports a
// symlink (or "..") leading outside the root with an unexported error, so it is
// recognised by its text; it must be 404 and not 500.
func classify(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR),
		errors.Is(err, syscall.ELOOP), errors.Is(err, syscall.ENAMETOOLONG),
		errors.Is(err, syscall.EINVAL):
		return &lookupError{http.StatusNotFound, err}
	case errors.Is(err, fs.ErrPermission), errors.Is(err, fsroot.ErrLinkOwner):
		return &lookupError{http.StatusForbidden, err}
	case strings.Contains(err.Error(), "escapes from parent"):
		return &lookupError{http.StatusNotFound, err}
	}
	return &lookupError{http.StatusInternalServerError, err}
}

// sibling opens the precompressed sibling of name for enc, if it is a regular file.
func sibling(root *fsroot.Root, name string, enc int) (*os.File, os.FileInfo, bool) {
	f, fi, err := openRegularOrDir(root, name+siblingSuffix[enc])
	if err != nil {
		return nil, nil, false
	}
	if fi.IsDir() {
		f.Close()
		return nil, nil, false
	}
	return f, fi, true
}

// sniffHead reads the first bytes of f for content sniffing without moving its
// offset; only needed when the extension is unknown.
func sniffHead(name string, f *os.File) []byte {
	if _, known := typeByName(name); known {
		return nil
	}
	buf := make([]byte, 512)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return nil
	}
	return buf[:n]
}

// readAll reads exactly size bytes of f; ok is false if the file changed size
// while being read, in which case it must not be cached.
func readAll(f *os.File, size int64) ([]byte, bool) {
	buf := make([]byte, size+1)
	// A regular file's read stops short only at its end: one read that returns
	// size bytes of the size+1 asked for has met the end, and a second read to
	// see EOF would cost a system call for nothing.
	n, err := f.Read(buf)
	if int64(n) != size && err == nil {
		var m int
		m, err = io.ReadFull(f, buf[n:])
		n += m
	}
	if err != io.ErrUnexpectedEOF && err != io.EOF && err != nil {
		return nil, false
	}
	return buf[:n:n], int64(n) == size
}
