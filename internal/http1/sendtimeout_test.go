package http1

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// payloadHandler answers /write (64 KiB Writes), /stream (small writes, each
// flushed, chunked) and /file (io.Copy from a file: sendfile) with the same
// bytes, on the fast path, or under /fb/ through the fallback net/http server.
type payloadHandler struct {
	data     []byte
	file     string
	returned atomic.Int64 // handlers that returned
	failed   atomic.Int64 // of those, the ones whose write failed
}

func (h *payloadHandler) ServeFast(w *ResponseWriter, r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, "/fb/") {
		return false
	}
	h.answer(w, r.URL.Path)
	return true
}

func (h *payloadHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.answer(w, strings.TrimPrefix(r.URL.Path, "/fb"))
}

func (h *payloadHandler) answer(w http.ResponseWriter, path string) {
	var err error
	defer func() {
		if err != nil {
			h.failed.Add(1)
		}
		h.returned.Add(1)
	}()
	w.Header().Set("Content-Type", "application/octet-stream")
	switch path {
	case "/write":
		w.Header().Set("Content-Length", fmt.Sprint(len(h.data)))
		for p := h.data; len(p) > 0 && err == nil; p = p[min(len(p), 64<<10):] {
			_, err = w.Write(p[:min(len(p), 64<<10)])
		}
	case "/stream":
		rc := http.NewResponseController(w)
		for p := h.data; len(p) > 0 && err == nil; p = p[min(len(p), 4<<10):] {
			if _, err = w.Write(p[:min(len(p), 4<<10)]); err == nil {
				err = rc.Flush()
			}
		}
	case "/file":
		f, ferr := os.Open(h.file)
		if ferr != nil {
			panic(ferr)
		}
		defer f.Close()
		w.Header().Set("Content-Length", fmt.Sprint(len(h.data)))
		_, err = io.Copy(w, f)
	}
}

// smallBuffers keeps the kernel from absorbing the response: the server's send
// buffer is fixed small, so the handler's writes follow the client's reading.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		c.(*net.TCPConn).SetWriteBuffer(64 << 10)
	}
	return c, err
}

// startPayload serves h with a write timeout of d and reports the connections
// still open on either path.
func startPayload(t *testing.T, h *payloadHandler, d time.Duration) (addr string, open func() int) {
	t.Helper()
	var fbOpen atomic.Int64
	fb := &http.Server{Handler: h, ConnState: func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			fbOpen.Add(1)
		case http.StateClosed, http.StateHijacked:
			fbOpen.Add(-1)
		}
	}}
	s := &Server{Handler: h, Fallback: fb, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, WriteTimeout: d}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(smallBuffers{ln})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return ln.Addr().String(), func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) + int(fbOpen.Load())
	}
}

func newPayload(t *testing.T, size int) *payloadHandler {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i/251)
	}
	name := filepath.Join(t.TempDir(), "payload.bin")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return &payloadHandler{data: data, file: name}
}

// dialSmall connects with a small receive buffer, so the client's reading (or
// not reading) shows at the server at once.
func dialSmall(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 32<<10) })
		return nil
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var payloadPaths = []struct{ name, path string }{
	{"fast path, large writes", "/write"},
	{"fast path, flushed stream", "/stream"},
	{"fast path, sendfile", "/file"},
	{"net/http, large writes", "/fb/write"},
	{"net/http, flushed stream", "/fb/stream"},
	{"net/http, sendfile", "/fb/file"},
}

// A client that asks for a large response and then reads nothing is dropped
// after the write timeout: the handler's write fails, it returns, and the
// connection (goroutine and descriptor) is gone, on both paths.
func TestWriteTimeoutDropsStalledReader(t *testing.T) {
	for _, tc := range payloadPaths {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newPayload(t, 16<<20)
			addr, open := startPayload(t, h, 300*time.Millisecond)
			c := dialSmall(t, addr)
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", tc.path)
			peertest.WaitFor(t, 20*time.Second, "the stalled client's connection to be closed", func() bool {
				return h.returned.Load() == 1 && open() == 0
			})
			if h.failed.Load() != 1 {
				t.Errorf("the handler's write did not fail: it sent all %d bytes into a client that read none", len(h.data))
			}
			// The client sees the end: what was sent, then EOF or a reset.
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := io.Copy(io.Discard, c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the server kept the connection open after %d bytes", n)
			}
			if n >= int64(len(h.data)) {
				t.Errorf("the client got all %d bytes", n)
			}
		})
	}
}

// A client that reads slowly but steadily gets the whole response, though
// sending it takes several times the write timeout: the timeout is for no
// progress, not for the response.
func TestWriteTimeoutKeepsSteadyReader(t *testing.T) {
	const timeout = 500 * time.Millisecond
	for _, tc := range payloadPaths {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newPayload(t, 3<<20)
			addr, _ := startPayload(t, h, timeout)
			c := dialSmall(t, addr)
			start := time.Now()
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", tc.path)
			// 16 KiB every 8ms: about 2 MB/s.
			tick := time.NewTicker(8 * time.Millisecond)
			defer tick.Stop()
			var got bytes.Buffer
			buf := make([]byte, 16<<10)
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			for {
				<-tick.C
				n, err := c.Read(buf)
				got.Write(buf[:n])
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("after %d bytes: %v", got.Len(), err)
				}
			}
			body := got.Bytes()
			if i := bytes.Index(body, []byte("\r\n\r\n")); i >= 0 {
				body = body[i+4:]
			}
			if tc.path == "/stream" || tc.path == "/fb/stream" {
				body = unchunk(t, body)
			}
			if !bytes.Equal(body, h.data) {
				t.Fatalf("got %d body bytes, want the %d sent", len(body), len(h.data))
			}
			if took := time.Since(start); took < 2*timeout {
				t.Fatalf("the download took %v, not long enough to test a %v timeout", took, timeout)
			}
			if h.failed.Load() != 0 {
				t.Errorf("a handler's write failed")
			}
		})
	}
}

func unchunk(t *testing.T, b []byte) []byte {
	t.Helper()
	var out []byte
	for {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			t.Fatalf("chunked body cut short after %d bytes", len(out))
		}
		var n int
		if _, err := fmt.Sscanf(string(b[:i]), "%x", &n); err != nil {
			t.Fatalf("chunk size %q: %v", b[:i], err)
		}
		if n == 0 {
			return out
		}
		out = append(out, b[i+2:i+2+n]...)
		b = b[i+2+n+2:]
	}
}
