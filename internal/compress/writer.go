package compress

import (
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"gantry/internal/abort"
)

// minSize is the smallest body compressed, as Caddy's default: below it the
// coding's own framing and the CPU cost outweigh the bytes saved.
const minSize = 512

// The writer's states: the header waits until the body's size or type decides
// whether to compress; then it is sent as is or for a compressed body.
const (
	undecided = iota
	passing
	compressing
)

// writer compresses a response when its header and first bytes allow it.
type writer struct {
	http.ResponseWriter
	coding *coding // what the client gets; nil for the identity
	head   bool    // a HEAD request

	state  uint8
	status int    // the handler's status, 0 before it chose one
	buf    []byte // body held back until it reaches minSize
	enc    encoder

	// A compressed response has no Content-Length, so the server can no longer
	// tell a body shorter than the handler declared: the writer holds it to the
	// declared length itself.
	sized    bool  // the handler declared a Content-Length
	declared int64 // what it declared
	in       int64 // bytes the handler wrote to the encoder
	// lost: a write to the client failed (it went away), so a body short of its
	// length is the client's doing, not the backend's.
	lost bool
	log  *slog.Logger
	uri  string
}

func (w *writer) WriteHeader(code int) {
	if w.state != undecided || code < 200 {
		w.ResponseWriter.WriteHeader(code) // 1xx and 101 go out at once
		return
	}
	if w.status != 0 {
		return // a second call, as net/http ignores it
	}
	w.status = code
	if size, ok := w.contentLength(); ok {
		w.decide(size)
	} else if w.coding == nil {
		w.decide(-1)
	}
}

func (w *writer) Write(p []byte) (int, error) {
	switch w.state {
	case passing:
		return w.ResponseWriter.Write(p)
	case compressing:
		if w.sized && w.in+int64(len(p)) > w.declared {
			// More than declared: the excess is dropped, as net/http does.
			n, err := w.enc.Write(p[:w.declared-w.in])
			w.in += int64(n)
			if err == nil {
				err = http.ErrContentLength
			}
			return n, err
		}
		n, err := w.enc.Write(p)
		w.in += int64(n)
		if err != nil {
			w.lost = true
		}
		return n, err
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
		if w.state != undecided {
			return w.Write(p)
		}
	}
	if len(w.buf)+len(p) < minSize {
		if w.buf == nil {
			w.buf = make([]byte, 0, minSize)
		}
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	w.sniff(p)
	w.decide(int64(len(w.buf) + len(p)))
	if err := w.flushBuf(); err != nil {
		return 0, err
	}
	return w.Write(p)
}

// sniff sets the Content-Type that net/http would detect when the handler set
// none: a compressed body must not be sniffed.
func (w *writer) sniff(p []byte) {
	h := w.ResponseWriter.Header()
	if _, ok := h["Content-Type"]; ok || len(w.buf)+len(p) == 0 {
		return
	}
	data := w.buf
	if len(data) < minSize {
		data = append(data, p[:min(len(p), minSize-len(data))]...)
	}
	h.Set("Content-Type", http.DetectContentType(data))
}

// flushBuf writes the bytes held back, once the decision is made.
func (w *writer) flushBuf() error {
	if len(w.buf) == 0 {
		return nil
	}
	b := w.buf
	w.buf = w.buf[:0]
	_, err := w.Write(b)
	return err
}

// contentLength is the handler's Content-Length, if it set a valid one.
func (w *writer) contentLength() (int64, bool) {
	v := w.ResponseWriter.Header()["Content-Length"]
	if len(v) != 1 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	return n, err == nil && n >= 0
}

// decide sends the header, for a compressed body or as it is, given the body's
// size (-1 when unknown and not needed: the identity).
func (w *writer) decide(size int64) {
	h := w.ResponseWriter.Header()
	ct, typed := h["Content-Type"]
	eligible := typed && len(ct) > 0 && compressible(ct[0]) &&
		w.status != http.StatusNoContent && w.status != http.StatusNotModified
	if eligible {
		addVary(h)
	}
	if eligible && w.coding != nil && size >= minSize && w.status != http.StatusPartialContent &&
		!has(h, "Content-Encoding") && !has(h, "Content-Range") && !noTransform(h["Cache-Control"]) {
		w.state = compressing
		w.declared, w.sized = w.contentLength()
		delete(h, "Content-Length")
		delete(h, "Accept-Ranges")
		h["Content-Encoding"] = []string{w.coding.name}
		if et := h["Etag"]; len(et) == 1 && strings.HasPrefix(et[0], `"`) {
			// The same resource, not the same bytes, as nginx marks it; a
			// conditional request's W/ tag still matches the file's (If-None-Match
			// compares weakly).
			h["Etag"] = []string{"W/" + et[0]}
		}
		w.ResponseWriter.WriteHeader(w.statusOr200())
		w.enc = w.coding.get(w.ResponseWriter)
		return
	}
	w.state = passing
	if w.status != 0 {
		w.ResponseWriter.WriteHeader(w.status)
	}
}

func (w *writer) statusOr200() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// finish completes the response after the handler returned.
func (w *writer) finish() {
	switch w.state {
	case undecided:
		if w.status == 0 && len(w.buf) == 0 {
			return // nothing written: net/http sends its empty 200
		}
		if w.status == 0 {
			w.status = http.StatusOK
		}
		w.sniff(nil)
		w.decide(int64(len(w.buf)))
		w.flushBuf()
	case compressing:
		if w.sized && w.in < w.declared {
			w.cut()
		}
		w.enc.Close()
	}
}

// cut ends a compressed response whose handler wrote less than it declared: the
// coded stream is left unfinished and the connection closed (abort.Response), so
// that the client sees the body cut short, as it would uncompressed.
func (w *writer) cut() {
	if w.lost {
		abort.Response(w.ResponseWriter, abort.Client)
		return
	}
	w.log.Error("backend response shorter than its Content-Length; connection closed",
		"uri", w.uri, "declared", w.declared, "sent", w.in)
	w.enc.Flush()
	abort.Response(w.ResponseWriter, abort.Backend)
}

// release returns the encoder; after a panic the response stays truncated (no
// trailer), so the client sees it was cut.
func (w *writer) release() {
	if w.enc != nil {
		w.coding.put(w.enc)
		w.enc = nil
	}
}

// Flush sends what the handler wrote so far, compressed, to the client: a
// streamed response (server-sent events, a CGI script's progress) is compressed
// and still arrives as it is written.
func (w *writer) Flush() {
	if w.state == undecided {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		w.sniff(nil)
		w.decide(1 << 62) // a stream: its size is unknown, and rarely small
		if err := w.flushBuf(); err != nil {
			return
		}
	}
	if w.state == compressing {
		if err := w.enc.Flush(); err != nil {
			return
		}
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// ReadFrom keeps sendfile for a file body sent as it is.
func (w *writer) ReadFrom(src io.Reader) (int64, error) {
	if w.state == undecided && w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.state == passing {
		if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
			return rf.ReadFrom(src)
		}
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	// Hidden behind plain interfaces so that the pooled buffer is used, not
	// one that os.File.WriteTo or a ReadFrom would allocate.
	return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{src}, *bp)
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Unwrap lets http.ResponseController and abort.Mark reach the writer beneath.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func has(h http.Header, key string) bool {
	v := h[key]
	return len(v) > 0 && v[0] != ""
}

// addVary adds Accept-Encoding to Vary unless it is there (or Vary is "*"). A
// static file's header value is shared, so it is replaced, never appended to in
// place.
func addVary(h http.Header) {
	vary := h["Vary"]
	for _, v := range vary {
		for v != "" {
			var tok string
			tok, v = next(v, ',')
			tok = trimOWS(tok)
			if tok == "*" || strings.EqualFold(tok, "Accept-Encoding") {
				return
			}
		}
	}
	if len(vary) == 0 {
		h["Vary"] = varyAE
		return
	}
	h["Vary"] = append(vary[:len(vary):len(vary)], "Accept-Encoding")
}

// varyAE is shared by every response: its capacity is its length, so a later
// append copies.
var varyAE = []string{"Accept-Encoding"}

// noTransform reports whether Cache-Control forbids changing the body.
func noTransform(cc []string) bool {
	for _, v := range cc {
		for v != "" {
			var tok string
			tok, v = next(v, ',')
			if strings.EqualFold(trimOWS(tok), "no-transform") {
				return true
			}
		}
	}
	return false
}
