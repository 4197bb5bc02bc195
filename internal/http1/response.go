package http1

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"gantry/internal/httpfield"
	"gantry/internal/sendtimeout"
)

// chunkAfter is the body a handler may write before the head must go out: net/http
// buffers as much (bufferBeforeChunkingSize) and, when the handler returns within
// it, sends a Content-Length instead of chunking. Keeping the same buffer keeps
// every framing decision, and so every byte on the wire, the same as net/http's.
const chunkAfter = 2048

// copyLimit is the largest body copied into the output buffer; a larger one goes
// out in the same writev(2) from where it is.
const copyLimit = 16 << 10

// ResponseWriter writes a fast response exactly as net/http's would be written for
// the same handler calls: the status line, the handler's headers sorted, then
// Date, Content-Length, Content-Type, Connection and Transfer-Encoding as net/http
// adds them; a body of unknown length is chunked (HTTP/1.1) or ends with the
// connection (HTTP/1.0), Content-Type is sniffed when missing, and Flush sends
// what is buffered. Unlike net/http, header changes made after WriteHeader but
// before the first body byte still reach the client.
type ResponseWriter struct {
	c           *conn
	req         *http.Request
	hdr         http.Header
	keys        []string
	out         []byte // wire bytes not yet sent
	pend        []byte // body held back before it reaches the wire, at most chunkAfter
	status      int
	written     int64 // body bytes the handler wrote
	clen        int64 // the declared or computed Content-Length, -1 when none
	wroteHeader bool  // the status is chosen
	headOut     bool  // the head is in out (or sent)
	chunking    bool
	handlerDone bool
	wants10Keep bool
	closeAfter  bool
	err         error
	clenBuf     [16]byte
}

func (w *ResponseWriter) reset(r *http.Request, keep bool) {
	clear(w.hdr)
	w.req = r
	w.out, w.pend = w.out[:0], w.pend[:0]
	w.status, w.written, w.clen = 0, 0, -1
	w.wroteHeader, w.headOut, w.chunking, w.handlerDone = false, false, false, false
	w.closeAfter, w.err = false, nil
	w.wants10Keep = r.ProtoMinor == 0 && keep
}

// Header returns the response header map, reused by the connection's next request.
func (w *ResponseWriter) Header() http.Header { return w.hdr }

// Status is the status written, 0 before WriteHeader.
func (w *ResponseWriter) Status() int { return w.status }

// Written is the number of body bytes written.
func (w *ResponseWriter) Written() int64 { return w.written }

// WriteHeader chooses the status; the head goes out with the first body bytes
// past the buffer, at Flush, or when the handler returns. A 1xx status other than
// 101 is sent at once, with the headers set so far, as net/http does.
func (w *ResponseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.informational(code)
		return
	}
	w.wroteHeader, w.status = true, code
	if cl := w.hdr.Get("Content-Length"); cl != "" {
		v, err := strconv.ParseInt(cl, 10, 64)
		if err == nil && v >= 0 {
			w.clen = v
		} else if w.c.s.Logger != nil {
			// net/http keeps the field, so the body is chunked and the field then
			// dropped; so does this writer.
			w.c.s.Logger.Warn("http1: handler set an invalid Content-Length", "value", cl)
		}
	}
}

func (w *ResponseWriter) informational(code int) {
	b := w.statusLine(w.out, code)
	b = w.appendFields(b, true)
	w.out = append(b, "\r\n"...)
	w.flush()
}

func (w *ResponseWriter) statusLine(b []byte, code int) []byte {
	if w.req.ProtoMinor == 1 {
		b = append(b, "HTTP/1.1 "...)
	} else {
		b = append(b, "HTTP/1.0 "...)
	}
	return appendStatus(b, code)
}

// appendFields writes the handler's fields sorted, leaving out invalid names and
// trailer placeholders as net/http does, and the framing fields when noBody.
func (w *ResponseWriter) appendFields(b []byte, noBody bool) []byte {
	w.keys = w.keys[:0]
	for k := range w.hdr {
		if noBody && (k == "Content-Length" || k == "Transfer-Encoding") ||
			strings.HasPrefix(k, http.TrailerPrefix) || !httpfield.ValidName(k) {
			continue
		}
		w.keys = append(w.keys, k)
	}
	sortStrings(w.keys)
	for _, k := range w.keys {
		for _, v := range w.hdr[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

func bodyAllowedForStatus(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

// writeHead formats the head into out, p being the first body bytes (nil when
// none are known yet). It follows net/http's chunkWriter.writeHeader rule by rule.
func (w *ResponseWriter) writeHead(p []byte) {
	w.headOut = true
	h := w.hdr
	code := w.status
	isHEAD := w.req.Method == http.MethodHead
	bodyAllowed := bodyAllowedForStatus(code)
	_, trailers := h["Trailer"]
	te := h.Get("Transfer-Encoding")
	hasTE := te != ""
	var autoLength []byte
	if w.handlerDone && !trailers && !hasTE && bodyAllowed && !has(h, "Content-Length") && (!isHEAD || len(p) > 0) {
		w.clen = int64(len(p))
		autoLength = strconv.AppendInt(w.clenBuf[:0], w.clen, 10)
	}
	keepAlives := !w.c.s.closing.Load()
	hasCL := w.clen != -1
	connection := ""
	if w.wants10Keep && (isHEAD || hasCL || !bodyAllowed) {
		if !has(h, "Connection") {
			connection = "keep-alive"
		}
	} else if w.req.ProtoMinor == 0 || w.req.Close {
		w.closeAfter = true
	}
	if h.Get("Connection") == "close" || !keepAlives {
		w.closeAfter = true
	}
	contentType := ""
	if bodyAllowed {
		if !has(h, "Content-Type") && h.Get("Content-Encoding") == "" && !hasTE && len(p) > 0 {
			contentType = http.DetectContentType(p)
		}
	} else {
		if code == http.StatusNotModified {
			delete(h, "Content-Type")
		}
		delete(h, "Content-Length")
		delete(h, "Transfer-Encoding")
	}
	if hasCL && hasTE && te != "identity" {
		delete(h, "Content-Length")
		hasCL = false
	}
	transferEncoding := ""
	switch {
	case isHEAD || !bodyAllowed:
		delete(h, "Transfer-Encoding")
	case hasCL:
		delete(h, "Transfer-Encoding")
	case w.req.ProtoMinor == 1:
		if hasTE && te == "identity" {
			w.closeAfter = true
			delete(h, "Transfer-Encoding")
		} else {
			w.chunking = true
			transferEncoding = "chunked"
			if hasTE && te == "chunked" {
				delete(h, "Transfer-Encoding")
			}
		}
	default:
		w.closeAfter = true
		delete(h, "Transfer-Encoding")
	}
	if w.chunking {
		delete(h, "Content-Length")
	}
	if w.closeAfter && (!keepAlives || !httpfield.HasToken(h.Get("Connection"), "close")) &&
		!(code == http.StatusSwitchingProtocols && has(h, "Upgrade")) {
		delete(h, "Connection")
		if w.req.ProtoMinor == 1 {
			connection = "close"
		}
	}

	b := w.statusLine(w.out, code)
	b = w.appendFields(b, false)
	if !has(h, "Date") {
		b = append(b, "Date: "...)
		b = append(b, httpDate()...)
		b = append(b, "\r\n"...)
	}
	if autoLength != nil {
		b = append(b, "Content-Length: "...)
		b = append(b, autoLength...)
		b = append(b, "\r\n"...)
	}
	for _, f := range [...]struct{ name, val string }{
		{"Content-Type: ", contentType}, {"Connection: ", connection}, {"Transfer-Encoding: ", transferEncoding},
	} {
		if f.val != "" {
			b = append(b, f.name...)
			b = append(b, f.val...)
			b = append(b, "\r\n"...)
		}
	}
	w.out = append(b, "\r\n"...)
}

func has(h http.Header, key string) bool {
	_, ok := h[key]
	return ok
}

// Write adds p to the response body.
func (w *ResponseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.clen != -1 && w.written > w.clen {
		return 0, http.ErrContentLength
	}
	if w.err != nil {
		return 0, w.err
	}
	n := len(p)
	// The buffer in front of the wire, as bufio.Writer fills and drains it.
	for len(p) > chunkAfter-len(w.pend) {
		if len(w.pend) == 0 {
			w.chunk(p)
			p = nil
			break
		}
		k := chunkAfter - len(w.pend)
		w.pend = append(w.pend, p[:k]...)
		p = p[k:]
		w.chunk(w.pend)
		w.pend = w.pend[:0]
	}
	w.pend = append(w.pend, p...)
	if w.err != nil {
		return 0, w.err
	}
	return n, nil
}

// chunk puts p on the wire after the head, framed when chunking.
func (w *ResponseWriter) chunk(p []byte) {
	if !w.headOut {
		w.writeHead(p)
	}
	if w.req.Method == http.MethodHead || len(p) == 0 || w.err != nil {
		return
	}
	b := w.out
	if w.chunking {
		b = strconv.AppendInt(b, int64(len(p)), 16)
		b = append(b, "\r\n"...)
	}
	if len(b)+len(p) <= copyLimit {
		b = append(b, p...)
		if w.chunking {
			b = append(b, "\r\n"...)
		}
		w.out = b
		return
	}
	// The head and the first piece go out in one writev(2); beyond sendtimeout.Chunk
	// the rest goes in pieces, each with a fresh write deadline.
	rest := p[len(p):]
	if w.c.s.WriteTimeout > 0 && len(p) > sendtimeout.Chunk {
		p, rest = p[:sendtimeout.Chunk], p[sendtimeout.Chunk:]
	}
	bufs := net.Buffers{b, p}
	if w.chunking && len(rest) == 0 {
		bufs = append(bufs, crlf)
	}
	w.c.extendWrite()
	_, err := bufs.WriteTo(w.c.nc)
	if err == nil && len(rest) > 0 {
		_, err = sendtimeout.Write(w.c.nc, rest, w.c.s.WriteTimeout)
		if err == nil && w.chunking {
			_, err = sendtimeout.Write(w.c.nc, crlf, w.c.s.WriteTimeout)
		}
	}
	w.out = b[:0]
	if err != nil {
		w.fail(err)
	}
}

var crlf = []byte("\r\n")

// drain moves the buffered body to the wire, the head first if it is not out yet.
func (w *ResponseWriter) drain() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(w.pend) > 0 {
		w.chunk(w.pend)
		w.pend = w.pend[:0]
	} else if !w.headOut {
		w.writeHead(nil)
	}
}

// FlushError sends everything written so far, as http.ResponseController's Flush.
func (w *ResponseWriter) FlushError() error {
	w.drain()
	return w.flush()
}

// Flush sends everything written so far.
func (w *ResponseWriter) Flush() { w.FlushError() }

// finish completes the response after the handler returned and reports whether
// the connection may carry another request.
func (w *ResponseWriter) finish() bool {
	w.handlerDone = true
	w.drain()
	if w.chunking && w.err == nil {
		w.out = append(w.out, "0\r\n\r\n"...)
	}
	if w.flush() != nil || w.closeAfter {
		return false
	}
	return w.req.Method == http.MethodHead || w.clen == -1 || !bodyAllowedForStatus(w.status) || w.clen == w.written
}

// beginCopy prepares ReadFrom: it puts the head (and the bytes sniffing needs) out
// first, and reports whether the rest of src may go to the connection as it is.
func (w *ResponseWriter) beginCopy(src io.Reader) (direct bool, n int64, err error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headOut && !(w.clen != -1 && has(w.hdr, "Content-Type")) {
		// As net/http: the first bytes go through Write, so that they can be
		// sniffed, and a chunked body starts with the same chunk. A typed body of
		// known length goes out the same either way.
		n, err = io.Copy(writerOnly{w}, io.LimitReader(src, 512))
		if err != nil || n < 512 {
			return false, n, err
		}
	}
	w.drain()
	if w.err != nil {
		return false, n, w.err
	}
	return !w.chunking && bodyAllowedForStatus(w.status) && w.req.Method != http.MethodHead, n, nil
}

func (w *ResponseWriter) fail(err error) {
	w.err = err
	w.closeAfter = true
}

var _ http.Flusher = (*ResponseWriter)(nil)
