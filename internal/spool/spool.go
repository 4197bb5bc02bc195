// Package spool reads a request body in full before a gateway sees it: in memory up
// to a threshold, then in a private temporary file, as nginx does with
// client_body_buffer_size and client_body_temp_path. A slow client then holds a
// goroutine and a file while it sends, never a CGI process, a FastCGI connection or
// a WSGI worker, and every gateway learns the body's real length whatever the client
// sent (Content-Length, chunked, or none at all).
package spool

import (
	"bytes"
	"errors"
	"fmt"
	"gantry/internal/clientnet"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// DefaultMemory is the largest body kept in memory; longer ones go to a file.
const DefaultMemory = 64 << 10

// DefaultDir is where bodies are spooled when the config names no directory: one
// per user, so that gantry after a privilege drop, or another user's gantry, never
// finds the directory taken.
func DefaultDir() string {
	return filepath.Join(os.TempDir(), "gantry-body-"+strconv.Itoa(os.Geteuid()))
}

// Spooler reads bodies into memory or into unnamed files under one directory.
type Spooler struct {
	dir     string
	mem     int
	budget  *budget
	bufs    sync.Pool // *[]byte of mem+1 bytes
	noTmpfs atomic.Bool
}

// New prepares dir (created 0700 when missing) for bodies longer than mem bytes
// (DefaultMemory when mem <= 0), holding at most maxFile bytes in files at once
// (no limit when 0), a quarter of it per client network. The directory must belong to this process's user
// and be closed to everyone else: the files are briefly visible there when the file
// system lacks O_TMPFILE.
func New(dir string, mem int, maxFile int64) (*Spooler, error) {
	if dir == "" {
		dir = DefaultDir()
	}
	if mem <= 0 {
		mem = DefaultMemory
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: body_temp %s: %w", dir, err)
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	s := &Spooler{dir: dir, mem: mem, budget: newBudget(maxFile)}
	s.bufs.New = func() any { b := make([]byte, mem+1); return &b }
	f, err := s.create()
	if err != nil {
		return nil, fmt.Errorf("spool: body_temp %s: cannot create files there: %w", dir, err)
	}
	f.Close()
	return s, nil
}

func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("spool: body_temp %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("spool: body_temp %s: not a directory", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("spool: body_temp %s: writable by other users (mode %o); chmod 700 it or name a private directory", dir, fi.Mode().Perm())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) != os.Geteuid() && st.Uid != 0 {
		return fmt.Errorf("spool: body_temp %s: owned by uid %d, not by gantry's user (uid %d); chown it or name another directory", dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		// Bodies are briefly named there without O_TMPFILE, and the processes of
		// every app (CGI scripts, workers run as other users) must not list or
		// open them. Only a directory of gantry's own is closed: a shared one
		// (a site's root), closed by root, would lock every other user out.
		if !ok || int(st.Uid) != os.Geteuid() || !onlyBodies(dir) {
			return fmt.Errorf("spool: body_temp %s: open to other users (mode %o) and not gantry's alone (another owner, or files gantry did not put there); chmod 700 %s or name a private directory", dir, fi.Mode().Perm(), dir)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("spool: body_temp %s: close it to other users: %w", dir, err)
		}
	}
	return nil
}

// Dir is the directory bodies are spooled in.
func (s *Spooler) Dir() string { return s.dir }

// create opens a new private file that has no name, so that nothing is left behind
// even if gantry is killed: O_TMPFILE where the file system has it, else a file
// removed as soon as it is created.
func (s *Spooler) create() (*os.File, error) {
	if !s.noTmpfs.Load() {
		f, err := openTmpfile(s.dir)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, errNoTmpfile) {
			return nil, err
		}
		s.noTmpfs.Store(true)
	}
	f, err := os.CreateTemp(s.dir, "body-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// errStore marks a failure to store the body (a full disk), which is the server's
// fault rather than the client's.
type storeError struct{ err error }

func (e *storeError) Error() string { return "spool: storing request body: " + e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// Read reads src to its end. length is the declared length, or -1 when unknown; a
// body that ends before it is an error. The caller closes the Body.
func (s *Spooler) Read(src io.Reader, length int64) (*Body, error) {
	return s.read(src, length, netip.Prefix{})
}

// read is Read for a client of network key, whose files count against its share
// of the budget.
func (s *Spooler) read(src io.Reader, length int64, key netip.Prefix) (*Body, error) {
	if length >= 0 && length <= int64(s.mem) {
		mem := make([]byte, length)
		if _, err := io.ReadFull(src, mem); err != nil {
			return nil, readError(err)
		}
		return &Body{mem: mem, n: length}, nil
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	buf := *bp
	var n int
	if length < 0 {
		var err error
		n, err = io.ReadFull(src, buf)
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return &Body{mem: bytes.Clone(buf[:n]), n: int64(n)}, nil
		case err != nil:
			return nil, readError(err)
		}
	}
	f, err := s.create()
	if err != nil {
		return nil, &storeError{err}
	}
	total, err := s.copyTo(f, src, buf, n, key)
	if err == nil && length >= 0 && total != length {
		err = readError(io.ErrUnexpectedEOF)
	}
	if err == nil {
		// A child that gets the file as its stdin reads from the file's offset.
		if _, serr := f.Seek(0, io.SeekStart); serr != nil {
			err = &storeError{serr}
		}
	}
	if err != nil {
		f.Close()
		s.budget.give(key, total)
		return nil, err
	}
	return &Body{file: f, n: total, sp: s, key: key}, nil
}

// copyTo writes buf[:n], then the rest of src, to f, using buf as the copy buffer
// (os.File's ReadFrom would allocate its own for a reader that is no file). Each
// write is first taken from key's budget; total is what was taken, also on error.
func (s *Spooler) copyTo(f *os.File, src io.Reader, buf []byte, n int, key netip.Prefix) (total int64, err error) {
	for {
		if n > 0 {
			if !s.budget.take(key, int64(n)) {
				return total, ErrFull
			}
			total += int64(n)
			if _, err := f.Write(buf[:n]); err != nil {
				return total, &storeError{err}
			}
		}
		n, err = src.Read(buf)
		if err == io.EOF {
			if n > 0 {
				continue
			}
			return total, nil
		}
		if err != nil {
			return total, readError(err)
		}
	}
}

func readError(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("spool: reading request body: %w", err)
}

// Status is the status to answer when Read failed with err: 413 past the body
// limit, 500 when the body could not be stored, 503 past the budget, else 400 (the client sent a broken
// body or went away).
func Status(err error) int {
	var mbe *http.MaxBytesError
	var se *storeError
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.As(err, &se):
		return http.StatusInternalServerError
	case errors.Is(err, ErrFull):
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// Request spools r's body (at most limit bytes) and puts the copy in its place, with
// r.ContentLength the real length. It returns nil when r has no body. A body past
// limit fails with *http.MaxBytesError and the connection is marked to close, so the
// rest is never read.
func (s *Spooler) Request(w http.ResponseWriter, r *http.Request, limit int64) (*Body, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		r.ContentLength = 0
		return nil, nil
	}
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	b, err := s.read(http.MaxBytesReader(w, r.Body, limit), r.ContentLength, clientnet.OfRemote(r.RemoteAddr))
	if err != nil {
		return nil, err
	}
	r.Body, r.ContentLength, r.TransferEncoding = b, b.Len(), nil
	return b, nil
}

// Body is a spooled request body. It reads from its start, can be rewound (a
// FastCGI retry sends it again), and is safe to close while a reader is still busy
// with it: reads then fail.
type Body struct {
	mem    []byte
	file   *os.File
	n, off int64
	closed atomic.Bool
	sp     *Spooler // whose budget a file's bytes are given back to
	key    netip.Prefix
}

// Len is the body's length.
func (b *Body) Len() int64 { return b.n }

// Bytes is the body when it is in memory, else nil.
func (b *Body) Bytes() []byte {
	if b.file != nil {
		return nil
	}
	return b.mem
}

// File is the body's file when it is not in memory, else nil. The file's own offset
// stays at 0 (Body reads with ReadAt), so it can be handed to a child as its stdin.
// It belongs to the Body: do not close it.
func (b *Body) File() *os.File { return b.file }

func (b *Body) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, fs.ErrClosed
	}
	if b.off >= b.n {
		return 0, io.EOF
	}
	if rest := b.n - b.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	var n int
	var err error
	if b.file != nil {
		n, err = b.file.ReadAt(p, b.off)
		if err == io.EOF && n > 0 {
			err = nil
		}
	} else {
		n = copy(p, b.mem[b.off:])
	}
	b.off += int64(n)
	return n, err
}

// Rewind starts the body over.
func (b *Body) Rewind() error {
	if b.closed.Load() {
		return fs.ErrClosed
	}
	b.off = 0
	return nil
}

// Close releases the file; it may be called more than once.
func (b *Body) Close() error {
	if b == nil || b.closed.Swap(true) || b.file == nil {
		return nil
	}
	if b.sp != nil {
		b.sp.budget.give(b.key, b.n)
	}
	return b.file.Close()
}

// onlyBodies reports whether dir holds nothing but spooled bodies (left by a
// gantry that was killed).
func onlyBodies(dir string) bool {
	names, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range names {
		if !strings.HasPrefix(e.Name(), "body-") {
			return false
		}
	}
	return true
}
