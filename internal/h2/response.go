package h2

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// bufSize is how much of a response is held before its headers go out: a
// response that fits gets its content-length, and leaves in one DATA frame.
const bufSize = 4 << 10

var errStreamGone = errors.New("h2: stream closed")

// responseWriter is a stream's http.ResponseWriter.
type responseWriter struct {
	c        *conn
	st       *stream
	r        *http.Request
	hdr      http.Header
	status   int
	declared int64 // content-length the handler set, -1 for none
	written  int64
	buf      []byte
	// inline: on the reader goroutine, which must never wait for window.
	inline, wroteHeader, sentHeader, done, head bool
}

func newResponseWriter(st *stream, r *http.Request, inline bool) *responseWriter {
	return &responseWriter{c: st.c, st: st, r: r, hdr: http.Header{}, declared: -1, inline: inline,
		head: r != nil && r.Method == http.MethodHead}
}

func (w *responseWriter) Header() http.Header { return w.hdr }

// MemoryOnly tells a cache whether it must answer from memory or decline: an
// inline response must not wait on the disk.
func (w *responseWriter) MemoryOnly() bool { return w.inline }

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader || w.done {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		// 1xx go out at once, with the headers set so far (103 Early Hints).
		w.c.sendHeaders(w.st, code, w.hdr, nil, false, -1, false)
		w.c.flushFromHandler()
		return
	}
	w.status = code
	w.wroteHeader = true
	if cl := w.hdr["Content-Length"]; len(cl) == 1 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.declared = n
		}
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errStreamGone
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.head {
		return len(p), nil
	}
	if !w.sentHeader && len(w.buf)+len(p) <= bufSize {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if err := w.commit(false); err != nil {
		return 0, err
	}
	if err := w.c.writeData(w.st, p, false, w.inline); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *responseWriter) WriteString(s string) (int, error) {
	if !w.sentHeader && len(w.buf)+len(s) <= bufSize && w.wroteHeader && !w.head && w.declared < 0 && !w.done && bodyAllowed(w.status) {
		w.buf = append(w.buf, s...)
		w.written += int64(len(s))
		return len(s), nil
	}
	return w.Write([]byte(s))
}

// commit sends the headers, if not yet, and the buffered body.
func (w *responseWriter) commit(end bool) error {
	if !w.sentHeader {
		w.sentHeader = true
		if err := w.c.sendHeaders(w.st, w.status, w.hdr, w.buf, end && len(w.buf) == 0, -1, true); err != nil {
			return err
		}
	}
	if len(w.buf) > 0 {
		b := w.buf
		w.buf = nil // an inline response's data may wait in the stream
		return w.c.writeData(w.st, b, end, w.inline)
	}
	return nil
}

func (w *responseWriter) FlushError() error {
	if w.done {
		return errStreamGone
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if err := w.commit(false); err != nil {
		return err
	}
	w.c.flushFromHandler()
	w.c.mu.Lock()
	err := w.c.werr
	w.c.mu.Unlock()
	return err
}

func (w *responseWriter) Flush() { w.FlushError() }

// finish ends the response after the handler returned.
func (w *responseWriter) finish() {
	if w.done {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	defer func() { w.done = true }()
	trailers := w.trailers()
	if !w.sentHeader {
		w.sentHeader = true
		cl := int64(-1)
		if w.declared < 0 && !w.head && bodyAllowed(w.status) && len(trailers) == 0 {
			cl = int64(len(w.buf))
		}
		end := len(w.buf) == 0 && len(trailers) == 0
		if w.c.sendHeaders(w.st, w.status, w.hdr, w.buf, end, cl, true) != nil {
			return
		}
		if end {
			w.c.localEnded(w.st)
			return
		}
	}
	if len(w.buf) > 0 || len(trailers) == 0 {
		if w.c.writeData(w.st, w.buf, len(trailers) == 0, w.inline) != nil {
			return
		}
	}
	if len(trailers) > 0 {
		if w.c.sendHeaders(w.st, 0, trailers, nil, true, -1, false) != nil {
			return
		}
	}
	w.c.mu.Lock()
	pending := len(w.st.pending) > 0
	w.c.mu.Unlock()
	if !pending {
		w.c.localEnded(w.st)
	}
}

// trailers are the values of the trailers the handler declared in "Trailer",
// or set with http.TrailerPrefix.
func (w *responseWriter) trailers() http.Header {
	var t http.Header
	for _, v := range w.hdr["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			if vv, ok := w.hdr[k]; ok && k != "" {
				if t == nil {
					t = http.Header{}
				}
				t[k] = vv
			}
		}
	}
	for k, vv := range w.hdr {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			if t == nil {
				t = http.Header{}
			}
			t[http.CanonicalHeaderKey(k[len(http.TrailerPrefix):])] = vv
		}
	}
	return t
}

func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

// sendHeaders buffers a HEADERS frame: the response head when status is not 0
// (with content-length cl unless -1, and date and a sniffed content-type when
// complete), else trailers.
func (c *conn) sendHeaders(st *stream, status int, h http.Header, body []byte, end bool, cl int64, complete bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.reset || c.closed {
		return errStreamGone
	}
	if c.werr != nil {
		return c.werr
	}
	c.encBuf.b = c.encBuf.b[:0]
	if status != 0 {
		c.field(":status", statusText(status))
	}
	if status >= 200 && st.body != nil {
		st.body.needContinue.Store(false) // no 100 after the final status
	}
	for k, vv := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		lk := lowerKey(k)
		switch lk {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			continue
		case "content-length":
			if cl >= 0 {
				continue
			}
		}
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range vv {
			if httpguts.ValidHeaderFieldValue(v) {
				c.field(lk, v)
			}
		}
	}
	if status != 0 && complete {
		if _, ok := h["Date"]; !ok {
			c.field("date", httpDate())
		}
		if _, ok := h["Content-Type"]; !ok && len(body) > 0 && bodyAllowed(status) {
			c.field("content-type", http.DetectContentType(body))
		}
		if cl >= 0 {
			c.field("content-length", strconv.FormatInt(cl, 10))
		}
	}
	c.wbuf = appendHeaderBlock(c.wbuf, st.id, c.encBuf.b, end, c.peerMaxFrame)
	return nil
}

func (c *conn) field(name, value string) {
	c.enc.WriteField(hpack.HeaderField{Name: name, Value: value})
}

// writeData buffers p as DATA frames within the client's windows, waiting for
// window unless inline: an inline response keeps what does not fit for the
// reader to send when the client grants more.
func (c *conn) writeData(st *stream, p []byte, end, inline bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	flushed := false
	var waitStart time.Time // when the wait for window began
	var timer *time.Timer
	for {
		if st.reset || c.closed {
			return errStreamGone
		}
		if c.werr != nil {
			return c.werr
		}
		n := max(min(int64(len(p)), st.sendWindow, c.sendWindow, int64(c.peerMaxFrame)), 0)
		if inline && len(st.pending) > 0 {
			n = -1 // behind what already waits
		}
		if n > 0 || n == 0 && len(p) == 0 {
			last := int(n) == len(p)
			c.wbuf = appendData(c.wbuf, st.id, p[:n], end && last)
			st.sendWindow -= n
			c.sendWindow -= n
			p = p[n:]
			flushed, waitStart = false, time.Time{}
			if last {
				return nil
			}
			if len(c.wbuf) >= maxPendingWrite && !inline {
				c.mu.Unlock()
				err := c.flush()
				c.mu.Lock()
				if err != nil {
					return err
				}
			}
			continue
		}
		if inline {
			if len(st.pending) == 0 {
				c.pendingStreams = append(c.pendingStreams, st)
			}
			st.pending = append(st.pending, p...)
			st.pendingEnd = end
			return nil
		}
		if !flushed {
			// The client grants window for what it has received.
			flushed = true
			c.mu.Unlock()
			c.flushFromHandler()
			c.mu.Lock()
			continue
		}
		if d := c.s.WriteTimeout; d > 0 {
			// A client that grants no window holds the handler no longer
			// than one that reads nothing holds a socket write.
			switch {
			case waitStart.IsZero() && timer == nil:
				waitStart = time.Now()
				timer = time.AfterFunc(d, func() {
					c.mu.Lock()
					c.cond.Broadcast()
					c.mu.Unlock()
				})
				defer timer.Stop()
			case waitStart.IsZero():
				waitStart = time.Now()
				timer.Reset(d)
			case time.Since(waitStart) >= d:
				c.resetLocked(st, errCancel)
				return errWindowTimeout
			}
		}
		c.cond.Wait()
	}
}

var errWindowTimeout = errors.New("h2: the client granted no flow-control window within the write timeout")

// sendPendingLocked sends what window allows of inline responses that waited
// for it.
func (c *conn) sendPendingLocked() {
	kept := c.pendingStreams[:0]
	for _, st := range c.pendingStreams {
		if st.reset || c.closed {
			continue
		}
		n := max(min(int64(len(st.pending)), st.sendWindow, c.sendWindow), 0)
		for n > 0 {
			k := min(n, int64(c.peerMaxFrame))
			last := int(k) == len(st.pending)
			c.wbuf = appendData(c.wbuf, st.id, st.pending[:k], st.pendingEnd && last)
			st.sendWindow -= k
			c.sendWindow -= k
			st.pending = st.pending[k:]
			n -= k
		}
		if len(st.pending) > 0 {
			kept = append(kept, st)
			continue
		}
		st.pending = nil
		st.localDone.Store(true)
		if c.streams[st.id] == st {
			if st.remoteDone {
				delete(c.streams, st.id)
			} else {
				c.resetLocked(st, errNo)
			}
		}
	}
	clear(c.pendingStreams[len(kept):])
	c.pendingStreams = kept
}

var statusTexts [600]string

func statusText(code int) string {
	if code < len(statusTexts) {
		if s := statusTexts[code]; s != "" {
			return s
		}
	}
	return strconv.Itoa(code)
}

// lowerKeys are the lowercase forms of common canonical header keys.
var lowerKeys = map[string]string{}

func init() {
	for i := 100; i < len(statusTexts); i++ {
		statusTexts[i] = strconv.Itoa(i)
	}
	for _, k := range []string{"Accept-Ranges", "Age", "Alt-Svc", "Cache-Control", "Content-Disposition",
		"Content-Encoding", "Content-Language", "Content-Length", "Content-Location", "Content-Range",
		"Content-Security-Policy", "Content-Type", "Date", "Etag", "Expires", "Last-Modified", "Link",
		"Location", "Server", "Set-Cookie", "Strict-Transport-Security", "Trailer", "Vary",
		"Www-Authenticate", "X-Content-Type-Options", "X-Frame-Options", "X-Powered-By", "Referrer-Policy",
		"Access-Control-Allow-Origin", "Retry-After", "Transfer-Encoding", "Connection", "Keep-Alive",
		"Proxy-Connection", "Upgrade"} {
		lowerKeys[k] = strings.ToLower(k)
	}
}

func lowerKey(k string) string {
	if l, ok := lowerKeys[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

// date caches the Date header's value for the current second.
var date atomic.Pointer[dateValue]

type dateValue struct {
	sec int64
	s   string
}

func httpDate() string {
	now := time.Now()
	if d := date.Load(); d != nil && d.sec == now.Unix() {
		return d.s
	}
	d := &dateValue{now.Unix(), now.UTC().Format(http.TimeFormat)}
	date.Store(d)
	return d.s
}
