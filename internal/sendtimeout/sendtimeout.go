// Package sendtimeout drops a client that stops reading: a connection's write
// deadline moves forward with every write that makes progress (nginx's
// send_timeout), so a large download or a long stream that keeps flowing is never
// cut, while a client that reads nothing for the timeout loses its connection and
// gives back its goroutine and descriptor.
package sendtimeout

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Chunk is the most one deadline covers: a client must take at least Chunk bytes
// per timeout (4 KiB/s at 60s) to keep its connection. Large writes and files go
// out in pieces of this size, each with a fresh deadline, so a slow but steady
// reader is never cut in the middle of one long write.
const Chunk = 256 << 10

// Conn is a net.Conn whose writes each get a fresh deadline. It keeps the
// optional methods net/http looks for on a *net.TCPConn (ReadFrom for sendfile,
// CloseWrite).
type Conn struct {
	net.Conn
	d time.Duration
}

// Wrap returns nc with a progress-based write timeout of d; d <= 0 returns nc.
func Wrap(nc net.Conn, d time.Duration) net.Conn {
	if d <= 0 {
		return nc
	}
	return &Conn{Conn: nc, d: d}
}

// Write writes p in pieces of at most Chunk bytes, each with its own deadline.
func (c *Conn) Write(p []byte) (int, error) { return Write(c.Conn, p, c.d) }

// Write writes p on nc in pieces of at most Chunk bytes, each with a deadline d
// from its start (none when d <= 0).
func Write(nc net.Conn, p []byte, d time.Duration) (int, error) {
	if d <= 0 {
		return nc.Write(p)
	}
	n := 0
	for {
		k := min(len(p)-n, Chunk)
		if err := nc.SetWriteDeadline(time.Now().Add(d)); err != nil {
			return n, err
		}
		m, err := nc.Write(p[n : n+k])
		n += m
		if err != nil || n == len(p) {
			return n, err
		}
	}
}

// ReadFrom sends r's bytes; see Copy.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) { return Copy(c.Conn, r, c.d) }

// CloseWrite half-closes the connection when it can.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Copy sends r's bytes on nc with a progress-based write timeout of d (none when
// d <= 0). A file (or an io.LimitedReader of one) goes through nc's ReadFrom in
// Chunk-sized pieces, so sendfile(2) still applies; any other reader is copied
// through a buffer, a fresh deadline per write: its bytes may take any time to
// arrive (a slow upstream, an idle stream), and that wait must not count against
// the client.
func Copy(nc net.Conn, r io.Reader, d time.Duration) (int64, error) {
	rf, canReadFrom := nc.(io.ReaderFrom)
	if d <= 0 && canReadFrom {
		return rf.ReadFrom(r)
	}
	remain := int64(-1) // to the end of the file
	src := r
	if lr, ok := r.(*io.LimitedReader); ok {
		src, remain = lr.R, lr.N
	}
	if _, isFile := src.(*os.File); !isFile || !canReadFrom {
		buf := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(buf)
		return io.CopyBuffer(writer{nc, d}, r, *buf)
	}
	var total int64
	lr := io.LimitedReader{R: src}
	for remain != 0 {
		lr.N = Chunk
		if remain > 0 {
			lr.N = min(remain, Chunk)
		}
		want := lr.N
		nc.SetWriteDeadline(time.Now().Add(d))
		n, err := rf.ReadFrom(&lr)
		total += n
		if remain > 0 {
			remain -= n
		}
		if err != nil || n < want {
			// n < want with no error: the file ended.
			if l, ok := r.(*io.LimitedReader); ok {
				l.N = remain
			}
			return total, err
		}
	}
	if l, ok := r.(*io.LimitedReader); ok {
		l.N = 0
	}
	return total, nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// writer writes to nc with a fresh deadline per write (none when d <= 0), and
// hides nc's ReadFrom so that io.Copy does not call it back.
type writer struct {
	nc net.Conn
	d  time.Duration
}

func (w writer) Write(p []byte) (int, error) { return Write(w.nc, p, w.d) }

// Listener wraps every connection ln accepts with Wrap(nc, d).
func Listener(ln net.Listener, d time.Duration) net.Listener {
	if d <= 0 {
		return ln
	}
	return listener{ln, d}
}

type listener struct {
	net.Listener
	d time.Duration
}

func (l listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(nc, l.d), nil
}
