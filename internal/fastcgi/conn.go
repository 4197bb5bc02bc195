package fastcgi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"gantry/internal/supervise"
)

// requestID is the one request id gantry uses: it never multiplexes, because neither
// php-fpm nor php-cgi supports it (they answer FCGI_MPXS_CONNS=0).
const requestID = 1

// conn is one connection to a backend, carrying one request at a time.
type conn struct {
	nc        net.Conn
	br        *bufio.Reader
	addr      string            // for errors and logs
	worker    *supervise.Worker // the spawned process behind it, if any
	idleSince time.Time
	// reused is set once the connection finished a request and was kept: a failure on
	// it may be the backend having closed it while idle.
	reused bool
	// The read and write deadlines last set (each used by one goroutine at a time:
	// the reader, and the request's writer). See setDeadline.
	rdeadline, wdeadline time.Time
	hdr                  [headerLen]byte
	// interrupted is set when the request is cancelled (client gone, body failed):
	// every later read or write fails at once. See interrupt.
	interrupted atomic.Bool
	// interruptFunc is interrupt as a func value, made once rather than per request.
	interruptFunc func()
	content       []byte // maxContent+255: one record's content and padding
}

func newConn(nc net.Conn, addr string) *conn {
	c := &conn{nc: nc, br: bufio.NewReaderSize(nc, 16<<10), addr: addr, content: make([]byte, maxContent+255)}
	c.interruptFunc = c.interrupt
	return c
}

// alive reports whether an idle connection is still open: a backend that closed it
// (php-fpm's pm.max_requests, a restart) has left an EOF to read. A read deadline in
// the past would not do, as Go checks it before making the system call.
func (c *conn) alive() bool {
	if c.br.Buffered() > 0 {
		return false // bytes after END_REQUEST: out of step
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := true
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = n < 0 && (rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK) // nothing to read: open and quiet
		return true
	})
	return err == nil && alive
}

// readRecord reads the next record, refreshing the read deadline whenever it might
// block so that timeout bounds the silence between two reads (nginx's
// fastcgi_read_timeout), not the whole response. The content is valid until the next
// call.
func (c *conn) readRecord(timeout time.Duration) (header, []byte, error) {
	return decodeRecord(c.br, c.hdr[:], c.content, func(need int) error {
		if c.br.Buffered() >= need {
			return nil
		}
		return c.setDeadline(&c.rdeadline, c.nc.SetReadDeadline, timeout)
	})
}

// decodeRecord reads one record from br into content (which holds maxContent+255
// bytes). before, when not nil, runs ahead of each read with the byte count needed.
func decodeRecord(br *bufio.Reader, hdr, content []byte, before func(need int) error) (header, []byte, error) {
	if before != nil {
		if err := before(headerLen); err != nil {
			return header{}, nil, err
		}
	}
	h, err := readHeader(br, hdr)
	if err != nil {
		return h, nil, err
	}
	n := int(h.ContentLength) + int(h.PaddingLength)
	if before != nil {
		if err := before(n); err != nil {
			return h, nil, err
		}
	}
	if _, err := io.ReadFull(br, content[:n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, err
	}
	return h, content[:h.ContentLength], nil
}

// write writes b with a write deadline and returns how many bytes the kernel took.
func (c *conn) write(b []byte, timeout time.Duration) (int, error) {
	if err := c.setDeadline(&c.wdeadline, c.nc.SetWriteDeadline, timeout); err != nil {
		return 0, err
	}
	return c.nc.Write(b)
}

var errInterrupted = errors.New("fastcgi: request interrupted")

// setDeadline extends a deadline (last, as last set) unless the connection was
// interrupted. Checking the flag after setting closes the race with interrupt: either
// this sees the flag, or interrupt's past deadline lands after this one and wakes the
// blocked call. A deadline still at least 15/16 of timeout away is left alone: moving
// it costs a runtime timer update, and several reads per request would each pay for
// it, while the silence allowed stays between 15/16 of timeout and timeout.
func (c *conn) setDeadline(last *time.Time, set func(time.Time) error, timeout time.Duration) error {
	now := time.Now()
	if last.Sub(now) < timeout-timeout/16 {
		*last = now.Add(timeout)
		set(*last)
	}
	if c.interrupted.Load() {
		return errInterrupted
	}
	return nil
}

// interrupt makes blocked and later reads and writes on c fail; safe to call from
// any goroutine. The connection is not reusable afterwards.
func (c *conn) interrupt() {
	c.interrupted.Store(true)
	c.nc.SetDeadline(time.Now())
}

// streamStdin copies body to the backend as STDIN records followed by the empty
// record that ends the stream. It reads at most maxContent bytes at a time, so memory
// stays bounded whatever the body's size.
func (c *conn) streamStdin(body io.Reader, timeout time.Duration) (bodyErr, connErr error) {
	buf := make([]byte, headerLen+32<<10)
	for {
		n, err := body.Read(buf[headerLen:])
		if n > 0 {
			appendHeader(buf[:0], typeStdin, requestID, n, 0)
			if _, werr := c.write(buf[:headerLen+n], timeout); werr != nil {
				return nil, werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err, nil
		}
	}
	_, err := c.write(appendRecord(buf[:0], typeStdin, requestID, nil), timeout)
	return nil, err
}

// abort tells the backend to give up on the request. The connection is closed after
// it either way, since the backend may still send the rest of the response.
func (c *conn) abort() {
	var b [headerLen]byte
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.nc.Write(appendRecord(b[:0], typeAbortRequest, requestID, nil))
}

// getValues asks for the named management variables (FCGI_MAX_CONNS, ...) and
// returns what the backend reports. php-fpm closes the connection after answering.
func getValues(nc net.Conn, timeout time.Duration, names ...string) (map[string]string, error) {
	var body []byte
	for _, n := range names {
		body = appendPair(body, n, "")
	}
	nc.SetDeadline(time.Now().Add(timeout))
	if _, err := nc.Write(appendRecord(nil, typeGetValues, 0, body)); err != nil {
		return nil, fmt.Errorf("fastcgi: GET_VALUES: %w", err)
	}
	c := newConn(nc, "")
	for {
		h, content, err := c.readRecord(timeout)
		if err != nil {
			return nil, fmt.Errorf("fastcgi: GET_VALUES: %w", err)
		}
		if h.Type != typeGetValuesResult {
			continue
		}
		pairs, err := parsePairs(content)
		if err != nil {
			return nil, err
		}
		m := make(map[string]string, len(pairs))
		for _, p := range pairs {
			m[p[0]] = p[1]
		}
		return m, nil
	}
}

// isTimeout reports whether err is a deadline or timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
