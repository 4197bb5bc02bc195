package http1

import (
	"net"
	"net/http"
)

// ResponseWriter writes a fast response exactly as net/http's would be written for
// the same handler calls: the status line, the handler's headers sorted, then
// Date and Connection as net/http adds them. It supports what a static file
// handler does: WriteHeader once, Write, and ReadFrom (sendfile from an *os.File).
type ResponseWriter struct {
	c           *conn
	req         *http.Request
	hdr         http.Header
	keys        []string
	out         []byte
	status      int
	written     int64
	wroteHeader bool
	wants10Keep bool
	closeAfter  bool
	err         error
}

func (w *ResponseWriter) reset(r *http.Request, keep bool) {
	clear(w.hdr)
	w.req = r
	w.out = w.out[:0]
	w.status, w.written = 0, 0
	w.wroteHeader, w.closeAfter, w.err = false, false, nil
	w.wants10Keep = r.ProtoMinor == 0 && keep
}

// Header returns the response header map, reused by the connection's next request.
func (w *ResponseWriter) Header() http.Header { return w.hdr }

// Status is the status written, 0 before WriteHeader.
func (w *ResponseWriter) Status() int { return w.status }

// Written is the number of body bytes written.
func (w *ResponseWriter) Written() int64 { return w.written }

// WriteHeader formats the response head into the output buffer.
func (w *ResponseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader, w.status = true, code
	bodyAllowed := code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
	if !bodyAllowed {
		delete(w.hdr, "Content-Type")
		delete(w.hdr, "Content-Length")
		delete(w.hdr, "Transfer-Encoding")
	}
	// net/http's rules for the requests this path takes (no body, the handler
	// sets Content-Length or answers without a body, and no Connection header).
	keepAlives := !w.c.s.closing.Load()
	_, hasCL := w.hdr["Content-Length"]
	connection := ""
	if w.wants10Keep && (w.req.Method == http.MethodHead || hasCL || !bodyAllowed) {
		connection = "keep-alive"
		if !keepAlives {
			w.closeAfter = true
		}
	} else if w.req.ProtoMinor == 0 || w.req.Close || !keepAlives {
		w.closeAfter = true
		if w.req.ProtoMinor == 1 {
			connection = "close"
		}
	}
	if !hasCL && bodyAllowed && w.req.Method != http.MethodHead {
		// net/http would chunk or count the body; this writer does neither.
		panic("http1: response without Content-Length")
	}

	b := w.out
	if w.req.ProtoMinor == 1 {
		b = append(b, "HTTP/1.1 "...)
	} else {
		b = append(b, "HTTP/1.0 "...)
	}
	b = appendStatus(b, code)
	w.keys = w.keys[:0]
	for k := range w.hdr {
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
	if _, ok := w.hdr["Date"]; !ok {
		b = append(b, "Date: "...)
		b = append(b, httpDate()...)
		b = append(b, "\r\n"...)
	}
	if connection != "" {
		b = append(b, "Connection: "...)
		b = append(b, connection...)
		b = append(b, "\r\n"...)
	}
	w.out = append(b, "\r\n"...)
}

// copyLimit is the largest body copied into the output buffer; a larger one goes
// out in the same writev(2) from where it is.
const copyLimit = 16 << 10

// Write adds p to the response body.
func (w *ResponseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.req.Method == http.MethodHead {
		return len(p), nil
	}
	if len(w.out)+len(p) <= copyLimit {
		w.out = append(w.out, p...)
		w.written += int64(len(p))
		return len(p), nil
	}
	bufs := net.Buffers{w.out, p}
	n, err := bufs.WriteTo(w.c.nc)
	body := max(n-int64(len(w.out)), 0)
	w.written += body
	w.out = w.out[:0]
	if err != nil {
		w.err = err
		w.closeAfter = true
		return int(body), err
	}
	return len(p), nil
}
