package http1

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// lockedBuffer is a log destination safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestParkerRetriedAfterFailure: a parker that cannot start (no descriptor
// left for its epoll set, as under a connection flood) is tried again later:
// idle connections are not left on their goroutines for the server's life.
func TestParkerRetriedAfterFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("lowers the process's descriptor limit")
	}
	var logs lockedBuffer
	h := &testHandler{body: []byte("hello"), entered: make(chan struct{}, 1), release: make(chan struct{})}
	s := &Server{Handler: h, Fallback: &http.Server{}, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute,
		ParkAfter: time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil)), reapEveryD: 50 * time.Millisecond}
	addr := serveTest(t, s)
	c := dial(t, addr)
	io.WriteString(c, fastGet)
	<-h.entered
	// No descriptor free: the first park cannot make its epoll set.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// The lowest free number: below it every number is taken.
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = uint64(f.Fd())
	f.Close()
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
			restored = true
		}
	}
	defer restore()
	h.release <- struct{}{}
	readAnswer(t, c)
	peertest.WaitFor(t, 0, "the parker's failure logged", func() bool {
		return bytes.Contains([]byte(logs.String()), []byte("cannot start the parker"))
	})
	restore()
	// The same connection, idle still, and the next ones park once it can.
	peertest.WaitFor(t, 0, "the connection parked after all", func() bool { return s.Parked() == 1 })
	go func() {
		for range h.entered {
			h.release <- struct{}{}
		}
	}()
	t.Cleanup(func() { close(h.entered) })
	io.WriteString(c, fastGet)
	readAnswer(t, c)
	peertest.WaitFor(t, 0, "the connection parked again", func() bool { return s.Parked() == 1 })
}
