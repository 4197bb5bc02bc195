package wsgi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gantry/internal/abort"
	"gantry/internal/cgienv"
	"gantry/internal/cgiresp"
	"gantry/internal/httpfield"
	"gantry/internal/spool"
	"gantry/internal/supervise"
)

// appendStatic marshals the environ keys that are the same for every request.
func appendStatic(b []byte, o Options) []byte {
	b = appendMarshalStr(b, "wsgi.version")
	b = append(b, mSmallTuple, 2, mInt, 1, 0, 0, 0, mInt, 0, 0, 0, 0)
	b = appendMarshalStr(b, "wsgi.multithread")
	b = appendMarshalBool(b, o.Threads > 1)
	b = appendMarshalStr(b, "wsgi.multiprocess")
	b = appendMarshalBool(b, o.Processes > 1)
	b = appendMarshalStr(b, "wsgi.run_once")
	b = appendMarshalBool(b, false)
	b = appendMarshalStr(b, "wsgi.input_terminated")
	b = appendMarshalBool(b, true)
	return b
}

type request struct {
	buf  []byte
	vars []cgienv.Var
}

func (h *Handler) getRequest() *request {
	if r, ok := h.bufs.Get().(*request); ok {
		return r
	}
	return &request{buf: make([]byte, 0, 4096), vars: make([]cgienv.Var, 0, 32)}
}

func (h *Handler) putRequest(r *request) {
	if cap(r.buf) <= 2*inlineBody {
		h.bufs.Put(r)
	}
}

// split maps the URL path to SCRIPT_NAME and PATH_INFO.
func (h *Handler) split(p string) (script, info string) {
	if h.prefix != "" && strings.HasPrefix(p, h.prefix) && (len(p) == len(h.prefix) || p[len(h.prefix)] == '/') {
		return h.prefix, p[len(h.prefix):]
	}
	return "", p
}

// encode builds the request frame (R or S) with the environ and an inline body.
func (h *Handler) encode(rq *request, r *http.Request, body []byte, stream bool) []byte {
	script, info := h.split(r.URL.Path)
	rq.vars = cgienv.Append(rq.vars[:0], r, &cgienv.Options{
		ScriptName:     script,
		PathInfo:       info,
		DocumentRoot:   h.opts.DocumentRoot,
		ServerSoftware: h.opts.ServerSoftware,
	})
	kind := byte(frameRequest)
	if stream {
		kind = frameStream
	}
	b := appendFrameHeader(rq.buf[:0], kind, 0)
	b = append(b, 0, 0, 0, 0, mDict)
	b = append(b, h.static...)
	b = appendMarshalStr(b, "wsgi.url_scheme")
	if r.TLS != nil {
		b = appendMarshalStr(b, "https")
	} else {
		b = appendMarshalStr(b, "http")
	}
	for _, v := range rq.vars {
		b = appendMarshalStr(appendMarshalStr(b, v.Name), v.Value)
	}
	b = append(b, mNull)
	binary.LittleEndian.PutUint32(b[frameHeaderLen:], uint32(len(b)-frameHeaderLen-4))
	b = append(b, body...)
	binary.LittleEndian.PutUint32(b[1:], uint32(len(b)-frameHeaderLen))
	rq.buf = b
	return b
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.py != nil {
		h.py.serve(h, w, r)
		return
	}
	r, body, stream, ok := h.readBody(w, r)
	if !ok {
		return
	}
	rq := h.getRequest()
	defer h.putRequest(rq)
	frame := h.encode(rq, r, nil, stream)
	if !stream {
		frame = append(frame, body...)
		binary.LittleEndian.PutUint32(frame[1:], uint32(len(frame)-frameHeaderLen))
		rq.buf = frame
	}

	for attempt := 0; ; attempt++ {
		worker, c, err := h.acquire(r.Context())
		if err != nil {
			h.unavailable(w, r, err)
			return
		}
		c.c.SetDeadline(time.Now().Add(h.opts.Timeout.D()))
		if _, err := c.c.Write(frame); err != nil {
			// Nothing reached the application (a worker that died between
			// requests), and nothing of a streamed body was read yet: another
			// worker takes the request.
			c.close()
			h.pool.Release(worker, supervise.Failed)
			if attempt == 0 {
				continue
			}
			h.log.Error("wsgi: send request to worker", "pid", worker.PID, "err", err)
			http.Error(w, "502 Bad Gateway", http.StatusBadGateway)
			return
		}
		h.respond(w, r, worker, c, stream, body)
		return
	}
}

// readBody decides how the request body reaches the application. The server has
// usually spooled it (internal/spool): one in memory goes inline, a larger one is
// streamed from its file. With request_buffering = false a small body is still read
// before a worker is taken, so a slow client holds no Python thread; a chunked one
// that fits gets a CONTENT_LENGTH, as nginx does, and a longer one streams with
// none, the application reading it to its end (wsgi.input_terminated). A streamed
// body starts with body, then the rest of r.Body. ok is false when the client was
// already answered.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (_ *http.Request, body []byte, stream, ok bool) {
	sb, _ := r.Body.(*spool.Body)
	switch {
	case r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0:
	case sb != nil && sb.Bytes() != nil:
		body = sb.Bytes()
	case r.ContentLength > 0 && r.ContentLength <= inlineBody:
		body = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			h.bodyError(w, r, err)
			return r, nil, false, false
		}
	case r.ContentLength < 0:
		buf := make([]byte, inlineBody+1)
		n, err := io.ReadFull(r.Body, buf)
		switch {
		case err == io.ErrUnexpectedEOF || err == io.EOF:
			// Read to its end, the body has a length, which the environ gives
			// by the rule for a sent Content-Length: none for an empty GET,
			// which over HTTP/3 never says it has no body.
			body = buf[:n]
			rl := *r
			rl.ContentLength = int64(n)
			r = &rl
		case err != nil:
			h.bodyError(w, r, err)
			return r, nil, false, false
		default:
			body, stream = buf[:n], true
		}
	default:
		stream = true
	}
	return r, body, stream, true
}

func (h *Handler) acquire(ctx context.Context) (*supervise.Worker, *wconn, error) {
	for attempt := 0; ; attempt++ {
		worker := h.pool.TryAcquire()
		if worker == nil {
			var err error
			worker, err = h.pool.AcquireWithin(ctx, h.opts.Timeout.D())
			if err != nil {
				return nil, nil, err
			}
		}
		c, err := worker.Data.(*workerData).get(ctx)
		if err == nil {
			return worker, c, nil
		}
		if ctx.Err() != nil {
			// The client left before the dial: no fault of the worker, which a
			// Failed would kill.
			h.pool.Release(worker, supervise.OK)
			return nil, nil, err
		}
		// A worker that died a moment ago, before the pool learnt it: nothing
		// reached it, so another worker takes the request. Failed keeps the pool
		// from handing this one out again.
		h.pool.Release(worker, supervise.Failed)
		if attempt > 0 {
			return nil, nil, err
		}
		h.log.Info("wsgi: worker unreachable; trying another", "pid", worker.PID, "err", err)
	}
}

func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client left while waiting
	}
	h.log.Error("wsgi: no worker available", "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", "1")
	http.Error(w, "503 Service Unavailable", http.StatusServiceUnavailable)
}

func (h *Handler) bodyError(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		h.log.Warn("wsgi: request body too large", "path", r.URL.Path, "limit", mbe.Limit)
		http.Error(w, "413 Request Entity Too Large", http.StatusRequestEntityTooLarge)
		return
	}
	h.log.Warn("wsgi: reading request body", "path", r.URL.Path, "err", err)
	http.Error(w, "400 Bad Request", http.StatusBadRequest)
}

// sendBody streams the rest of a large request body to the worker as B frames,
// ending with E, or A when reading from the client fails.
func sendBody(c *wconn, prefix []byte, body io.Reader, failed *atomic.Value, done chan<- struct{}) {
	defer close(done)
	bp := bodyBufs.Get().(*[]byte)
	defer bodyBufs.Put(bp)
	buf := *bp
	if len(prefix) > 0 {
		f := appendFrameHeader(buf[:0], frameBody, len(prefix))
		if _, err := c.c.Write(append(f, prefix...)); err != nil {
			return
		}
	}
	for {
		// Read straight behind the frame header's room, so that each frame goes
		// out in one write without a copy.
		n, err := io.ReadFull(body, buf[frameHeaderLen:])
		if n > 0 {
			appendFrameHeader(buf[:0], frameBody, n)
			if _, werr := c.c.Write(buf[:frameHeaderLen+n]); werr != nil {
				return
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			c.c.Write(appendFrameHeader(buf[:0], frameBodyEnd, 0))
			return
		}
		if err != nil {
			failed.Store(err)
			msg := err.Error()
			c.c.Write(append(appendFrameHeader(buf[:0], frameBodyAbort, len(msg)), msg...))
			return
		}
	}
}

// bodyChunk is the most body one B frame carries: large enough that a spooled
// upload of a few MB is a handful of frames for the worker to loop over.
const bodyChunk = 256 << 10

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, frameHeaderLen+bodyChunk); return &b }}

// respond relays the worker's response frames to the client.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, worker *supervise.Worker, c *wconn, stream bool, prefix []byte) {
	ctx := r.Context()
	var bodyDone chan struct{}
	var bodyErr atomic.Value
	if stream {
		bodyDone = make(chan struct{})
		go sendBody(c, prefix, r.Body, &bodyErr, bodyDone)
	}
	stop := context.AfterFunc(ctx, func() { c.c.SetReadDeadline(time.Unix(1, 0)) })
	sent := false // response head written to the client
	outcome := supervise.OK
	reuse := false
	defer func() {
		stop()
		if reuse && bodyDone != nil {
			select {
			case <-bodyDone:
			default:
				reuse = false // the worker finished before the body did
			}
		}
		if reuse {
			worker.Data.(*workerData).put(c)
		} else {
			c.close()
		}
		h.pool.Release(worker, outcome)
	}()
	fail := func(code int, msg string, args ...any) {
		h.log.Error(msg, append(args, "method", r.Method, "path", r.URL.Path, "pid", worker.PID)...)
		if !sent {
			http.Error(w, strconv.Itoa(code)+" "+http.StatusText(code), code)
			return
		}
		if code == http.StatusGatewayTimeout {
			abort.Response(w, abort.Timeout)
		}
		abort.Response(w, abort.Backend)
	}
	fr := c.fr
	var contentLength int64 = -1
	for {
		kind, n, err := fr.next()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				// The client left: closing the connection makes the worker's next send
				// fail, and it calls the iterable's close().
				abort.Mark(w, abort.Client)
			case errors.Is(err, os.ErrDeadlineExceeded):
				outcome = supervise.Stuck
				fail(http.StatusGatewayTimeout, "wsgi: worker timed out; replacing it", "timeout", h.opts.Timeout.D())
			default:
				outcome = supervise.Failed
				fail(http.StatusBadGateway, "wsgi: worker died during the request", "err", err)
			}
			return
		}
		switch kind {
		case frameHead:
			p, err := fr.payload(n)
			if err != nil {
				outcome = supervise.Failed
				fail(http.StatusBadGateway, "wsgi: reading response head", "err", err)
				return
			}
			code, err := h.writeHead(w, p, &contentLength)
			if err != nil {
				fail(http.StatusInternalServerError, "wsgi: invalid response from the application", "err", err)
				return
			}
			w.WriteHeader(code)
			sent = true
		case frameData:
			if !sent {
				outcome = supervise.Failed
				fail(http.StatusBadGateway, "wsgi: protocol error: body before head")
				return
			}
			werr, err := fr.copyTo(w, n)
			if werr != nil {
				abort.Mark(w, abort.Client)
				return
			}
			if err != nil {
				outcome = supervise.Failed
				fail(http.StatusBadGateway, "wsgi: worker died during the response", "err", err)
				return
			}
			if fr.buffered() == 0 {
				// About to wait for the application: what it produced goes out now.
				http.NewResponseController(w).Flush()
				c.c.SetReadDeadline(time.Now().Add(h.opts.Timeout.D()))
				if ctx.Err() != nil {
					abort.Mark(w, abort.Client)
					return
				}
			}
		case frameFile:
			p, err := fr.payload(n)
			fd := fr.takeFD()
			if err != nil || len(p) != 16 || fd < 0 || !sent {
				if fd >= 0 {
					syscall.Close(fd)
				}
				outcome = supervise.Failed
				fail(http.StatusBadGateway, "wsgi: protocol error: bad file frame")
				return
			}
			if err := sendFile(w, fd, int64(binary.LittleEndian.Uint64(p)), contentLength); err != nil {
				h.log.Warn("wsgi: sending file", "path", r.URL.Path, "err", err)
				return
			}
		case frameEnd:
			reuse = true
			return
		case frameError:
			p, _ := fr.payload(n)
			reuse = true
			var mbe *http.MaxBytesError
			if e, ok := bodyErr.Load().(error); ok && errors.As(e, &mbe) && !sent {
				h.log.Warn("wsgi: request body too large", "path", r.URL.Path, "limit", mbe.Limit)
				http.Error(w, "413 Request Entity Too Large", http.StatusRequestEntityTooLarge)
				return
			}
			fail(http.StatusInternalServerError, "wsgi: application error (traceback in the worker's log)", "err", string(p))
			return
		default:
			outcome = supervise.Failed
			fail(http.StatusBadGateway, "wsgi: protocol error", "frame", string(rune(kind)))
			return
		}
	}
}

// sendFile copies the file behind fd from offset (up to length bytes when known) to
// w; net/http uses sendfile for it when the response is not chunked.
func sendFile(w io.Writer, fd int, offset, length int64) error {
	f := os.NewFile(uintptr(fd), "wsgi.file_wrapper")
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	if length >= 0 {
		_, err := io.CopyN(w, f, length)
		return err
	}
	_, err := io.Copy(w, f)
	return err
}

// writeHead validates the application's status and headers and sets them on w.
func (h *Handler) writeHead(w http.ResponseWriter, p []byte, contentLength *int64) (int, error) {
	status, headers, err := decodeHead(p)
	if err != nil {
		return 0, err
	}
	// PEP 3333's form, "200 OK", is asked of an application, as wsgiref does:
	// a bare code or a tab is a bug to tell it about.
	if len(status) < 5 || status[3] != ' ' {
		return 0, fmt.Errorf("invalid status %q (want e.g. \"200 OK\")", status)
	}
	code, err := cgiresp.ParseStatus(status)
	if err != nil {
		return 0, fmt.Errorf("invalid status: %w", err)
	}
	var keyBuf [16]string
	keys := keyBuf[:0]
	for _, kv := range headers {
		if !httpfield.ValidName(kv[0]) {
			return 0, fmt.Errorf("invalid header name %q", kv[0])
		}
		if !httpfield.ValidValue(kv[1]) {
			return 0, fmt.Errorf("invalid value for header %s: %q", kv[0], kv[1])
		}
		k := http.CanonicalHeaderKey(kv[0])
		// PEP 3333 forbids them; refused, not dropped, so the app's author hears of it.
		if cgiresp.IsHopByHop(k) {
			return 0, fmt.Errorf("hop-by-hop header %s not allowed in a WSGI response", kv[0])
		}
		keys = append(keys, k)
	}
	hdr := w.Header()
	hasType := false
	// One backing array for the values of every field named once, as most are.
	vals := make([]string, len(headers))
	for i, kv := range headers {
		k := keys[i]
		switch k {
		case "Content-Type":
			hasType = true
		case "Content-Length":
			n, err := strconv.ParseInt(kv[1], 10, 64)
			if err != nil || n < 0 || (*contentLength >= 0 && n != *contentLength) {
				return 0, fmt.Errorf("invalid Content-Length %q", kv[1])
			}
			*contentLength = n
			if len(hdr[k]) > 0 {
				continue
			}
		}
		if len(hdr[k]) == 0 {
			vals[i] = kv[1]
			hdr[k] = vals[i : i+1 : i+1]
		} else {
			hdr[k] = append(hdr[k], kv[1])
		}
	}
	if !hasType {
		// The application decides; net/http must not sniff one.
		hdr["Content-Type"] = nil
	}
	return code, nil
}
