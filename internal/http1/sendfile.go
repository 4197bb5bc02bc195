package http1

import (
	"io"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// fileSend is one response's head-then-file send. Its callbacks are bound once
// and the value reused through a pool, so the send allocates nothing, where
// going through net.TCPConn.ReadFrom costs several allocations and a second
// descriptor lock for the head.
type fileSend struct {
	dst    syscall.RawConn
	head   []byte
	srcFD  int
	remain int64 // bytes still to send from the file
	sent   int64 // file bytes sent
	err    error
	// c gets a fresh write deadline whenever the socket fills up after the
	// previous wait moved bytes: a client reading slowly but steadily keeps its
	// download, one that stops reading loses it after WriteTimeout.
	c     *conn
	moved bool
	// notRegular: src is not a regular file; nothing was sent.
	notRegular bool
	onSrc      func(uintptr)
	onDst      func(uintptr) bool
}

var fileSends = sync.Pool{New: func() any {
	s := new(fileSend)
	s.onSrc = s.withSource
	s.onDst = s.send
	return s
}}

// sendFile sends what is buffered and then src with sendfile(2), when src is an
// *os.File or an io.LimitedReader of one and the connection's socket is
// reachable. ok false means nothing was sent from src and the caller must copy
// it another way (the head may have gone out already; then w.out is empty).
func (w *ResponseWriter) sendFile(src io.Reader) (n int64, err error, ok bool) {
	if w.c.raw == nil {
		return 0, nil, false
	}
	remain := int64(1<<63 - 1) // to the end of the file
	lr, limited := src.(*io.LimitedReader)
	if limited {
		src, remain = lr.R, lr.N
	}
	f, isFile := src.(*os.File)
	if !isFile {
		return 0, nil, false
	}
	if remain <= 0 {
		return 0, nil, true
	}
	fc, err := f.SyscallConn()
	if err != nil {
		return 0, nil, false
	}
	s := fileSends.Get().(*fileSend)
	s.dst, s.head, s.remain, s.c = w.c.raw, w.out, remain, w.c
	w.c.extendWrite()
	if cerr := fc.Control(s.onSrc); cerr != nil && s.err == nil {
		s.err = cerr
	}
	n, err, headSent, notRegular := s.sent, s.err, len(s.head) == 0, s.notRegular
	*s = fileSend{onSrc: s.onSrc, onDst: s.onDst}
	fileSends.Put(s)
	if notRegular {
		return 0, nil, false
	}
	if headSent {
		w.out = w.out[:0]
	}
	if limited {
		lr.N -= n
	}
	if headSent && n == 0 && (err == syscall.EINVAL || err == syscall.ENOSYS || err == syscall.EOPNOTSUPP) {
		// A file system without sendfile(2): the head went out but none of
		// the file, so a plain copy can take over.
		return 0, nil, false
	}
	w.written += n
	if err != nil {
		w.err = err
		w.closeAfter = true
	}
	return n, err, true
}

func (s *fileSend) withSource(fd uintptr) {
	// Only a regular file: from anything else sendfile(2) could answer EAGAIN
	// for want of input, which would read as a full socket.
	var st syscall.Stat_t
	if err := syscall.Fstat(int(fd), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		s.notRegular = true
		return
	}
	s.srcFD = int(fd)
	if err := s.dst.Write(s.onDst); err != nil && s.err == nil {
		s.err = err
	}
}

// send runs with the socket's write lock held; false means "wait until the
// socket is writable, then call again". The head goes first with MSG_MORE, the
// per-send form of TCP_CORK (nginx's tcp_nopush), so that it shares packets with
// the file's first bytes rather than leaving alone in a small segment.
func (s *fileSend) send(fd uintptr) bool {
	for len(s.head) > 0 {
		// A send on a non-blocking socket never sleeps, so it needs no
		// system-call bookkeeping by the Go scheduler.
		n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&s.head[0])), uintptr(len(s.head)),
			syscall.MSG_MORE|syscall.MSG_NOSIGNAL, 0, 0)
		switch e {
		case 0:
			s.head = s.head[n:]
			s.moved = s.moved || n > 0
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return s.wait()
		}
		s.err = e
		return true
	}
	for s.remain > 0 {
		// sendfile(2) may read the file from disk: a blocking system call as
		// far as the scheduler knows.
		n, err := syscall.Sendfile(int(fd), s.srcFD, nil, int(min(s.remain, 1<<30)))
		if n > 0 {
			s.sent += int64(n)
			s.remain -= int64(n)
			s.moved = true
		}
		switch err {
		case nil:
			if n == 0 {
				return true // end of file
			}
		case syscall.EINTR:
		case syscall.EAGAIN:
			return s.wait()
		default:
			s.err = err
			return true
		}
	}
	return true
}

// wait is send's answer to a full socket: wait for room, with a fresh deadline
// when bytes moved since the last one.
func (s *fileSend) wait() bool {
	if s.moved {
		s.moved = false
		s.c.extendWrite()
	}
	return false
}
