package http1

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"gantry/internal/h2"
	"gantry/internal/peertest"
	"gantry/internal/sendtimeout"
)

// smallSendBuffers gives every accepted connection a small socket send buffer,
// so that what a client does not read stays in gantry rather than the kernel.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// h2Client is a raw HTTP/2 client over TLS whose socket holds little: what it
// has not read stays on the server.
func h2Client(t *testing.T, addr string, pool *x509.CertPool) (*tls.Conn, *http2.Framer) {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := tls.DialWithDialer(&d, "tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	// flow control never holds the server back: only the socket does
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	fr.WriteWindowUpdate(0, 1<<30)
	return conn, fr
}

func getStream1(t *testing.T, fr *http2.Framer, path string) {
	t.Helper()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
}

// A graceful Shutdown while a client is behind on reading an HTTP/2 response:
// what the server gathered for it (the end of the body, the GOAWAY) reaches the
// client once it reads again, and TLS's close_notify after it. crypto/tls sets
// a past write deadline as it closes, which must not cut bytes a Write already
// took.
func TestHTTP2ShutdownDeliversGathered(t *testing.T) {
	for _, own := range []bool{false, true} {
		t.Run(map[bool]string{false: "net/http", true: "internal/h2"}[own], func(t *testing.T) {
			testHTTP2ShutdownDeliversGathered(t, own)
		})
	}
}

func testHTTP2ShutdownDeliversGathered(t *testing.T, own bool) {
	tc, pool := peertest.SelfSigned(t)
	const size = 1 << 20
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	fb := &http.Server{Handler: handler, TLSConfig: tc}
	s := &Server{Handler: declineAll{}, Fallback: fb, TLSConfig: tc, WriteTimeout: time.Minute}
	if own {
		s.H2 = &h2.Server{Handler: handler}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// as server/tls.go serves it: write_timeout applied per write, below TLS
	go s.Serve(sendtimeout.Listener(smallSendBuffers{ln}, time.Minute))

	conn, fr := h2Client(t, ln.Addr().String(), pool)
	getStream1(t, fr, "/big")
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, ended, goaway := 0, false, false
	readFrame := func() error {
		f, err := fr.ReadFrame()
		if err != nil {
			return err
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			got += len(f.Data())
			ended = ended || f.StreamEnded()
		case *http2.GoAwayFrame:
			goaway = true
		}
		return nil
	}
	// Read all but the last 40 KB, then stop: the server's socket fills and the
	// rest waits in gantry, with room for the END_STREAM and the GOAWAY as soon
	// as the flusher has taken what it writes.
	for got < size-40<<10 {
		if err := readFrame(); err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (the client read %d bytes)", err, got)
	}
	var err2 error
	for err2 == nil {
		err2 = readFrame()
	}
	if got != size || !ended || !goaway {
		t.Errorf("after Shutdown the client read %d of %d bytes (stream ended %v, GOAWAY %v), then %v", got, size, ended, goaway, err2)
	}
}

// A write deadline bounds the Writes after it, as on a socket: one that waits
// for room past it fails with a timeout, and what earlier Writes took still
// reaches the client, before the EOF of Close.
func TestCoalesceWriteDeadline(t *testing.T) {
	server, client := net.Pipe() // no buffer: nothing goes out until the client reads
	defer client.Close()
	c := newCoalesceConn(server)
	c.coalesce()
	var want bytes.Buffer
	p := bytes.Repeat([]byte("x"), 4<<10)
	gathered := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.buf)
	}
	// the flusher takes the first Write and waits for the client with it
	if _, err := c.Write(p); err != nil {
		t.Fatal(err)
	}
	want.Write(p)
	peertest.WaitFor(t, 10*time.Second, "the flusher to take the first Write", func() bool { return gathered() == 0 })
	for gathered() < maxGathered { // the rest fill the buffer
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
		want.Write(p)
	}
	c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Write(p)
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("a Write waiting for room past its deadline: %v, want a timeout", err)
	}
	if _, err := c.Write(p); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a Write after the deadline: %v, want a timeout", err)
	}
	c.Close()
	got, err := io.ReadAll(client)
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Errorf("the client read %d bytes, want the %d earlier Writes took, then EOF (%v)", len(got), want.Len(), err)
	}
}

// An idle HTTP/2 connection holds no gathered buffer: net/http's HTTP/2 server
// gives its own write buffer back between writes, and thousands of idle
// connections must not each keep up to two buffers of maxKept here.
func TestCoalesceIdleHoldsNoBuffer(t *testing.T) {
	server, client := tcpPair(t)
	c := newCoalesceConn(server)
	c.coalesce()
	defer c.Close()
	for _, n := range []int{300, 10 << 10, 12 << 10} { // responses a page's worth apart
		if _, err := c.Write(bytes.Repeat([]byte("r"), n)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(client, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	held := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return cap(c.buf) + cap(c.spare)
	}
	peertest.WaitFor(t, 5*time.Second, "the idle connection to give its buffers back", func() bool { return held() == 0 })
}
