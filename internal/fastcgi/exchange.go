package fastcgi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"time"

	"gantry/internal/cgiresp"
	"gantry/internal/supervise"
)

// exchange is one request on one connection: it sends the request, then reads
// records, turning STDOUT into the HTTP response as it arrives and STDERR into log
// lines, until END_REQUEST.
type exchange struct {
	h      *Handler
	w      http.ResponseWriter
	r      *http.Request
	c      *conn
	script string
	// idempotent: a safe method without a body (GET, HEAD), which may run twice.
	idempotent bool

	// sent is set once any byte of the request reached the backend: from then on
	// the backend may have run it.
	sent        bool
	head        []byte      // STDOUT until the header block is complete
	hdr         http.Header // empty: the header block is parsed into it
	gotStdout   bool
	wroteHeader bool
	unflushed   bool
	stderr      []byte // an incomplete STDERR line
}

// result is how an exchange ended. err is nil on success.
type result struct {
	err        error
	status     int               // the status to answer with, when nothing was sent yet
	reusable   bool              // the connection may carry another request
	outcome    supervise.Outcome // Failed: the backend misbehaved or died; Stuck: it timed out
	retry      bool              // the request may be sent again on another connection (see connFailed)
	clientGone bool
}

type stdinResult struct{ bodyErr, connErr error }

// streamStdin sends body from a goroutine of its own, so that the response is read
// while the body is still going out, and reports on the returned channel.
func streamStdin(c *conn, body io.Reader, timeout time.Duration) chan stdinResult {
	done := make(chan stdinResult, 1)
	go func() {
		bodyErr, connErr := c.streamStdin(body, timeout)
		if bodyErr != nil {
			c.interrupt()
		}
		done <- stdinResult{bodyErr, connErr}
	}()
	return done
}

func (e *exchange) run(req []byte, body *reqBody) result {
	c, timeout := e.c, e.h.opts.Timeout.D()
	// A client that goes away cancels the request context: wake whatever is blocked.
	stop := context.AfterFunc(e.r.Context(), c.interruptFunc)
	defer stop()

	n, err := c.write(req, timeout)
	e.sent = n > 0
	if err != nil {
		return e.connFailed(err, nil)
	}
	var stdin chan stdinResult
	if !body.inline() {
		stdin = streamStdin(c, body.reader(), timeout)
	}
	// waitStdin collects the writer; after END_REQUEST, or on an error, the backend
	// no longer reads, so the writer is woken rather than left blocked.
	waitStdin := func(force bool) (stdinResult, bool) {
		if stdin == nil {
			return stdinResult{}, true
		}
		if force {
			c.interrupt()
		}
		s := <-stdin
		stdin = nil
		return s, s.bodyErr == nil && s.connErr == nil
	}

	for {
		hdr, content, err := c.readRecord(timeout)
		if err != nil {
			s, _ := waitStdin(true)
			return e.connFailed(err, &s)
		}
		if hdr.ID != requestID {
			waitStdin(true)
			return e.protocolError(fmt.Errorf("fastcgi: %s record for request %d, want %d", hdr.Type, hdr.ID, requestID))
		}
		switch hdr.Type {
		case typeStdout:
			if len(content) == 0 {
				continue
			}
			e.gotStdout = true
			if err := e.stdout(content); err != nil {
				waitStdin(true)
				return err.(resultError).result
			}
			if e.unflushed && c.br.Buffered() == 0 {
				// About to block on the backend: let the client have what came so far.
				if err := http.NewResponseController(e.w).Flush(); err != nil {
					waitStdin(true)
					return result{err: err, clientGone: true}
				}
				e.unflushed = false
			}
		case typeStderr:
			e.logStderr(content, false)
		case typeEndRequest:
			e.logStderr(nil, true)
			end, err := parseEndRequest(content)
			if err != nil {
				waitStdin(true)
				return e.protocolError(err)
			}
			// The backend is done; a body it did not read leaves the connection out
			// of step, so it is closed rather than reused.
			var stdinOK bool
			select {
			case s := <-stdin:
				stdin, stdinOK = nil, s.bodyErr == nil && s.connErr == nil
			default:
				_, stdinOK = waitStdin(stdin != nil)
			}
			return e.finish(end, stdinOK)
		default:
			waitStdin(true)
			return e.protocolError(fmt.Errorf("fastcgi: unexpected %s record", hdr.Type))
		}
	}
}

type resultError struct{ result }

func (r resultError) Error() string { return r.err.Error() }

// stdout handles one STDOUT record's content.
func (e *exchange) stdout(b []byte) error {
	if !e.wroteHeader {
		// Usually the whole block is in the first record: parsed where it is, then.
		head := b
		if len(e.head) > 0 {
			e.head = append(e.head, b...)
			head = e.head
		}
		resp, n, err := cgiresp.Parse(head, e.hdr)
		switch {
		case errors.Is(err, cgiresp.ErrIncomplete):
			if len(e.head) == 0 {
				e.head = append(e.head, b...)
			}
			return nil
		case errors.Is(err, cgiresp.ErrTooLong):
			return resultError{e.protocolError(fmt.Errorf("fastcgi: response %w", err))}
		case err != nil:
			// The script's fault, not the process's: it stays in service.
			return resultError{result{err: fmt.Errorf("fastcgi: invalid response header: %w", err), status: http.StatusBadGateway}}
		}
		// No local redirect (RFC 3875 §6.2.2) here: a Location is the client's, as
		// with nginx, and PHP sets a Status with it anyway.
		status := resp.Code()
		dst := e.w.Header()
		for k, v := range e.hdr {
			dst[k] = v
		}
		e.w.WriteHeader(status)
		e.wroteHeader = true
		b = head[n:]
		if len(b) == 0 {
			return nil
		}
	}
	if _, err := e.w.Write(b); err != nil {
		return resultError{result{err: fmt.Errorf("fastcgi: writing response: %w", err), clientGone: true}}
	}
	e.unflushed = true
	return nil
}

// finish completes the exchange at END_REQUEST.
func (e *exchange) finish(end endRequest, stdinOK bool) result {
	switch end.ProtocolStatus {
	case statusRequestComplete:
	case statusOverloaded, statusCantMpxConn:
		return result{err: fmt.Errorf("fastcgi: backend refused the request (protocol status %d)", end.ProtocolStatus),
			status: http.StatusServiceUnavailable}
	default:
		return e.protocolError(fmt.Errorf("fastcgi: backend refused the request (protocol status %d)", end.ProtocolStatus))
	}
	if !e.wroteHeader {
		if len(e.head) == 0 {
			return e.protocolError(errors.New("fastcgi: backend sent no response"))
		}
		return e.protocolError(errors.New("fastcgi: response ended inside its header block"))
	}
	reusable := stdinOK && !e.c.interrupted.Load() && e.c.br.Buffered() == 0
	e.c.reused = reusable
	return result{reusable: reusable}
}

func (e *exchange) protocolError(err error) result {
	return result{err: err, status: http.StatusBadGateway, outcome: supervise.Failed}
}

// connFailed classifies a failed read or write on the connection.
func (e *exchange) connFailed(err error, s *stdinResult) result {
	switch {
	case e.r.Context().Err() != nil:
		e.c.abort()
		return result{err: context.Cause(e.r.Context()), clientGone: true}
	case s != nil && s.bodyErr != nil:
		e.c.abort()
		return result{err: fmt.Errorf("fastcgi: request body: %w", s.bodyErr), status: bodyStatus(s.bodyErr)}
	case isTimeout(err):
		return result{err: fmt.Errorf("fastcgi: %s: no response within %s: %w", e.c.addr, e.h.opts.Timeout.D(), err),
			status: http.StatusGatewayTimeout, outcome: supervise.Stuck}
	}
	if s != nil && s.connErr != nil && errors.Is(err, errInterrupted) {
		err = s.connErr
	}
	res := result{err: fmt.Errorf("fastcgi: %s: %w", e.c.addr, err), status: http.StatusBadGateway, outcome: supervise.Failed}
	// A request is sent again only when that cannot run it twice: the backend never
	// got a byte of it (a kept-alive connection it had closed, found so on the first
	// write), or it is a safe, bodiless request that failed on a kept-alive connection
	// before any answer, which on TCP is how a connection the backend closed while idle
	// shows (the write lands in the socket buffer, the loss shows on the read). A POST
	// that a dying backend took is never replayed: the script may have run.
	res.retry = isConnLoss(err) && (!e.sent || e.idempotent && e.c.reused && !e.gotStdout)
	return res
}

// isConnLoss reports a connection that the backend closed or reset.
func isConnLoss(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// logStderr logs the backend's STDERR line by line; final logs a last partial line.
func (e *exchange) logStderr(b []byte, final bool) {
	e.stderr = append(e.stderr, b...)
	for {
		i := indexNewline(e.stderr)
		if i < 0 {
			break
		}
		e.logLine(e.stderr[:i])
		e.stderr = e.stderr[i+1:]
	}
	if len(e.stderr) > 0 && (final || len(e.stderr) > 8<<10) {
		e.logLine(e.stderr)
		e.stderr = e.stderr[:0]
	}
}

func (e *exchange) logLine(line []byte) {
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if len(line) == 0 {
		return
	}
	e.h.log.Warn("fastcgi stderr", "script", e.script, "msg", string(line))
}

func indexNewline(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}
