package cgi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gantry/internal/abort"
	"gantry/internal/cgiresp"
)

// The header must fit in one buffer, so it is as large as the header may be.
var bufPool = sync.Pool{New: func() any { b := make([]byte, cgiresp.MaxHeaderBytes); return &b }}

// session carries one script run's response from the script's stdout to the client.
type session struct {
	h  *Handler
	w  http.ResponseWriter
	rc *http.ResponseController
	r  *http.Request
	t  target
	p  *proc
	// streamed: the request body is read from the connection while the script runs
	streamed bool

	wroteHeader atomic.Bool
	aborted     bool // the response was cut short after its header went out
	unflushed   bool // output was sent on but not flushed when the script closed stdout

	// a failure found before any header was sent, answered once the script is reaped
	failStatus int
	failReason string
	failErr    error
	headerEOF  error // the script's output ended (or was cut) before a full header

	redirect *url.URL // a local redirect to serve once the script is reaped
}

func (s *session) fail(status int, reason string, err error) {
	s.failStatus, s.failReason, s.failErr = status, reason, err
	s.p.terminate(killAbandon)
}

// serve reads the script's response header, then streams the body. It returns
// when the output ends or the client or the script has gone.
func (s *session) serve() {
	if s.t.nph && !s.streamed && s.serveNPH() {
		return
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp

	parse := cgiresp.Parse
	if s.t.nph {
		parse = cgiresp.ParseNPH
	}
	header := make(http.Header, 8)
	var resp cgiresp.Response
	var hn, n int
	for {
		m, err := s.p.stdout.Read(buf[n:])
		n += m
		var perr error
		resp, hn, perr = parse(buf[:n], header)
		if perr == nil {
			break
		}
		if !errors.Is(perr, cgiresp.ErrIncomplete) {
			s.fail(http.StatusBadGateway, "bad response header", perr)
			return
		}
		if err != nil {
			s.headerEOF = err
			return
		}
	}

	if resp.LocalRedirect() {
		u, err := url.Parse(resp.Location)
		if err != nil {
			s.fail(http.StatusBadGateway, "bad Location", err)
			return
		}
		s.redirect = u
		s.drain(buf)
		return
	}

	hdr := s.w.Header()
	for k, v := range header {
		hdr[k] = v
	}
	if _, ok := header["Content-Type"]; !ok {
		// Never guess a type from the script's output: a sniffed text/html can
		// turn a script's plain output into a page that runs.
		hdr["Content-Type"] = nil
	}
	s.wroteHeader.Store(true)
	s.w.WriteHeader(resp.Code())
	if s.r.Method == http.MethodHead {
		s.drain(buf)
		return
	}
	s.stream(buf, buf[hn:n])
}

// stream copies the script's output to the client as it comes: whatever the pipe
// holds is sent on, and the response is flushed whenever the script has nothing
// more to say for the moment, so a slow script's output is never held back.
func (s *session) stream(buf, pending []byte) {
	rawc, err := s.p.stdout.SyscallConn()
	if err != nil {
		s.aborted = true
		return
	}
	dirty := false
	if len(pending) > 0 {
		if !s.write(pending) {
			return
		}
		dirty = true
	}
	for {
		n, wouldBlock, err := tryRead(rawc, buf)
		if wouldBlock {
			if dirty {
				if err := s.rc.Flush(); err != nil {
					s.p.terminate(killClient)
					s.aborted = true
					return
				}
				dirty = false
			}
			n, err = s.p.stdout.Read(buf)
		}
		if n > 0 {
			if !s.write(buf[:n]) {
				return
			}
			dirty = true
		}
		if err == io.EOF {
			s.unflushed = dirty
			return
		}
		if err != nil {
			s.aborted = true
			return
		}
	}
}

// write sends b to the client; false means the response cannot go on.
func (s *session) write(b []byte) bool {
	_, err := s.w.Write(b)
	if err == nil {
		return true
	}
	if errors.Is(err, http.ErrBodyNotAllowed) {
		// 204 or 304: the status says there is no body, whatever the script wrote.
		s.drain(nil)
		return false
	}
	s.p.terminate(killClient)
	s.aborted = true
	return false
}

// drain reads the script's output to its end without sending it, so that the script
// can finish writing.
func (s *session) drain(buf []byte) {
	if buf == nil {
		buf = make([]byte, 32<<10)
	}
	for {
		if _, err := s.p.stdout.Read(buf); err != nil {
			return
		}
	}
}

// serveNPH passes an nph- script's output to the connection untouched. It returns
// false when the connection cannot be taken over (HTTP/2); the output is then parsed
// like any other script's, its status line standing in for Status, as it is when the
// request body still streams from the connection.
func (s *session) serveNPH() bool {
	conn, brw, err := s.rc.Hijack()
	if err != nil {
		return false
	}
	defer conn.Close()
	s.wroteHeader.Store(true)
	conn.SetDeadline(time.Now().Add(s.h.opts.Timeout.D()))
	if err := brw.Flush(); err != nil {
		s.p.terminate(killClient)
		return true
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := s.p.stdout.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				s.p.terminate(killClient)
				return true
			}
		}
		if err != nil {
			return true
		}
	}
}

// beforeWait runs when the script closed its output but runs on: the client gets
// the response now rather than when the script ends.
func (s *session) beforeWait() {
	if s.unflushed {
		s.rc.Flush()
	}
}

// finish answers for the run once the script has been reaped: an error status when no
// header went out, a local redirect, or an aborted connection when a response was cut.
// complete reports whether the script's response went out whole: a header sent,
// no failure, kill, abort or local redirect left to handle.
func (s *session) complete() bool {
	return s.wroteHeader.Load() && s.failStatus == 0 && s.headerEOF == nil && s.redirect == nil &&
		!s.aborted && s.p.killReason() == notKilled
}

func (s *session) finish(ws syscall.WaitStatus, bodyErr error) {
	log := s.h.log
	script := s.t.scriptName
	why := s.p.killReason()
	limit := s.h.stoppedBy(ws, s.p.cpu)
	if limit != "" && s.wroteHeader.Load() {
		log.Error("cgi: script stopped by its "+limit+" limit; response cut short", "script", script, "err", exitError(ws).Error())
		// Its output ended with the kill, which looks like the end of the body.
		s.aborted = true
	}
	if s.failStatus == 0 && s.headerEOF != nil {
		switch {
		case why == killTimeout:
			s.failStatus, s.failReason = http.StatusGatewayTimeout, "script timed out after "+s.h.opts.Timeout.D().String()
		case why == killShutdown:
			s.failStatus, s.failReason = http.StatusServiceUnavailable, "server shutting down"
		case why == killBody || errors.As(bodyErr, new(*http.MaxBytesError)):
			s.failStatus, s.failReason, s.failErr = http.StatusRequestEntityTooLarge, "request body too large", bodyErr
		case why == killClient:
			log.Info("cgi: client went away", "script", script)
			abort.Mark(s.w, abort.Client)
			return
		case limit != "":
			s.failStatus, s.failReason = http.StatusBadGateway, "script stopped by its "+limit+" limit before sending a complete header"
			s.failErr = exitError(ws)
		default:
			s.failStatus, s.failReason = http.StatusBadGateway, "script ended before sending a complete header"
			s.failErr = exitError(ws)
			if s.failErr == nil {
				s.failErr = s.headerEOF
			}
		}
	}
	if s.failStatus != 0 {
		attrs := []any{"script", script, "status", s.failStatus}
		if s.failErr != nil {
			attrs = append(attrs, "err", s.failErr.Error())
		}
		log.Error("cgi: "+s.failReason, attrs...)
		msg := strconv.Itoa(s.failStatus) + " " + strings.ToLower(http.StatusText(s.failStatus))
		http.Error(s.w, msg, s.failStatus)
		return
	}
	if s.wroteHeader.Load() && why == killTimeout {
		log.Error("cgi: script timed out after "+s.h.opts.Timeout.D().String()+"; response cut short", "script", script)
		// Its output ended with the kill, which looks like the end of the body.
		s.aborted = true
	}
	if s.redirect != nil {
		s.localRedirect()
		return
	}
	if s.aborted {
		// Ending the response normally would make a cut one look complete.
		switch why {
		case killTimeout:
			abort.Response(s.w, abort.Timeout)
		case killClient:
			abort.Response(s.w, abort.Client)
		default:
			abort.Response(s.w, abort.Backend)
		}
	}
}

// localRedirect serves a script's "Location: /path" as a new GET request for that
// path (RFC 3875 §6.2.2). REQUEST_URI stays what the client asked for, as in Apache.
func (s *session) localRedirect() {
	depth, _ := s.r.Context().Value(redirectDepthKey{}).(int)
	if depth >= maxLocalRedirects {
		s.h.log.Error("cgi: too many local redirects", "script", s.t.scriptName, "location", s.redirect.String())
		http.Error(s.w, "500 internal server error: redirect loop", http.StatusInternalServerError)
		return
	}
	r2 := s.r.Clone(context.WithValue(s.r.Context(), redirectDepthKey{}, depth+1))
	r2.Method = http.MethodGet
	r2.Body = http.NoBody
	r2.ContentLength = 0
	r2.TransferEncoding = nil
	r2.Header.Del("Content-Length")
	r2.Header.Del("Content-Type")
	r2.URL.Path = s.redirect.Path
	r2.URL.RawPath = s.redirect.RawPath
	r2.URL.RawQuery = s.redirect.RawQuery
	if s.h.opts.Redirect != nil {
		s.h.opts.Redirect(s.w, r2)
		return
	}
	s.h.ServeHTTP(s.w, r2)
}
