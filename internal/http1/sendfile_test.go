package http1

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// fileHandler answers GET /file with bytes [off, off+n) of a file through
// ReadFrom, as the static handler does for a file too large to keep in memory:
// Seek, then io.CopyN (an io.LimitedReader of the *os.File).
type fileHandler struct {
	f      *os.File
	off, n int64
	length []string // Content-Length, for n
	// after records, per request, the file offset and what CopyN reported.
	after chan [2]int64
}

func (h *fileHandler) ServeFast(w *ResponseWriter, r *http.Request) bool {
	if r.URL.Path != "/file" {
		return false
	}
	w.Header()["Content-Length"] = h.length
	w.Header()["Content-Type"] = octetStream
	if _, err := h.f.Seek(h.off, io.SeekStart); err != nil {
		panic(err)
	}
	n, _ := io.CopyN(w, h.f, h.n)
	if h.after != nil {
		pos, _ := h.f.Seek(0, io.SeekCurrent)
		h.after <- [2]int64{pos, n}
	}
	return true
}

var octetStream = []string{"application/octet-stream"}

func (h *fileHandler) set(off, n int64) {
	h.off, h.n, h.length = off, n, []string{strconv.FormatInt(n, 10)}
}

func writeTestFile(tb testing.TB, size int) (*os.File, []byte) {
	tb.Helper()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i/251)
	}
	name := filepath.Join(tb.TempDir(), "body.bin")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f, data
}

func startFileServer(tb testing.TB, h *fileHandler) string {
	tb.Helper()
	s := &Server{Handler: h, Fallback: &http.Server{}, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, WriteTimeout: time.Minute}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go s.Serve(ln)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return ln.Addr().String()
}

// readResponse reads one response with a Content-Length body from c into buf,
// without allocating (the benchmark's allocations are the server's).
func readResponse(tb testing.TB, c io.Reader, buf []byte) (head, body []byte) {
	tb.Helper()
	got, hlen := 0, -1
	for hlen < 0 {
		n, err := c.Read(buf[got:])
		if err != nil {
			tb.Fatalf("reading head: %v", err)
		}
		got += n
		if i := bytes.Index(buf[:got], crlf2); i >= 0 {
			hlen = i + 4
		}
	}
	head = buf[:hlen]
	i := bytes.Index(head, lengthField)
	if i < 0 {
		tb.Fatalf("no Content-Length in %q", head)
	}
	clen := 0
	for _, ch := range head[i+len(lengthField):] {
		if ch < '0' || ch > '9' {
			break
		}
		clen = clen*10 + int(ch-'0')
	}
	total := hlen + clen
	for got < total {
		n, err := c.Read(buf[got:total])
		if err != nil {
			tb.Fatalf("reading body (%d of %d bytes): %v", got-hlen, clen, err)
		}
		got += n
	}
	return head, buf[hlen:total]
}

var (
	crlf2       = []byte("\r\n\r\n")
	lengthField = []byte("\r\nContent-Length: ")
)

// TestReadFromFileSendsTheRange checks the sendfile path byte for byte: the whole
// file, a part at an offset, and a body larger than the socket buffer, on one
// keep-alive connection; the file offset and io.CopyN's count must be as a copy
// through Read would leave them.
func TestReadFromFileSendsTheRange(t *testing.T) {
	f, data := writeTestFile(t, 3<<20)
	cases := []struct {
		name   string
		off, n int64
	}{
		{"whole file", 0, int64(len(data))},
		{"part at an offset", 100_001, 102_400},
		{"one byte", 4095, 1},
		{"tail", int64(len(data)) - 10, 10},
	}
	h := &fileHandler{f: f, after: make(chan [2]int64, 1)}
	c := dial(t, startFileServer(t, h))
	buf := make([]byte, 4<<20)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.set(tc.off, tc.n)
			io.WriteString(c, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
			head, body := readResponse(t, c, buf)
			if !bytes.HasPrefix(head, []byte("HTTP/1.1 200 OK\r\n")) {
				t.Fatalf("head %q", head)
			}
			if !bytes.Equal(body, data[tc.off:tc.off+tc.n]) {
				t.Fatalf("body differs from the file's bytes [%d, %d)", tc.off, tc.off+tc.n)
			}
			if a := <-h.after; a != [2]int64{tc.off + tc.n, tc.n} {
				t.Errorf("after the copy: file offset %d, copied %d; want %d, %d", a[0], a[1], tc.off+tc.n, tc.n)
			}
		})
	}
}

// TestReadFromFileShorterThanLimit: a file that ends before the limit (it shrank
// after its size was taken) sends what there is, and the connection closes
// rather than leaving the client waiting for the missing bytes.
func TestReadFromFileShorterThanLimit(t *testing.T) {
	f, data := writeTestFile(t, 1000)
	h := &fileHandler{f: f, after: make(chan [2]int64, 1)}
	h.set(500, 1000)
	c := dial(t, startFileServer(t, h))
	io.WriteString(c, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
	if a := <-h.after; a[1] != 500 {
		t.Errorf("CopyN reported %d bytes; want the 500 the file has", a[1])
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading until close: %v", err)
	}
	if !bytes.HasSuffix(got, data[500:]) {
		t.Errorf("response does not end with the file's last 500 bytes")
	}
}

// TestReadFromFileSlowReader: a client that reads in small pieces through a
// small window fills the socket, so the send waits for room (EAGAIN) many times
// over; the body must still arrive whole.
func TestReadFromFileSlowReader(t *testing.T) {
	f, data := writeTestFile(t, 8<<20)
	h := &fileHandler{f: f, after: make(chan [2]int64, 1)}
	h.set(0, int64(len(data)))
	addr := startFileServer(t, h)
	c := dial(t, addr)
	c.(*net.TCPConn).SetReadBuffer(64 << 10)
	io.WriteString(c, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
	_, body := readResponse(t, smallReads{c}, make([]byte, 9<<20))
	if !bytes.Equal(body, data) {
		t.Fatalf("body of %d bytes differs from the file's %d", len(body), len(data))
	}
	if a := <-h.after; a[1] != int64(len(data)) {
		t.Errorf("CopyN reported %d bytes, want %d", a[1], len(data))
	}
}

// smallReads reads at most 4 KB at a time.
type smallReads struct{ r io.Reader }

func (r smallReads) Read(p []byte) (int, error) {
	return r.r.Read(p[:min(len(p), 4096)])
}

// TestReadFromFileClientLeaves: a client that closes the connection in the
// middle of a large body makes the send fail, and the handler returns instead of
// waiting for room that never comes.
func TestReadFromFileClientLeaves(t *testing.T) {
	f, data := writeTestFile(t, 32<<20)
	h := &fileHandler{f: f, after: make(chan [2]int64, 1)}
	h.set(0, int64(len(data)))
	c := dial(t, startFileServer(t, h))
	c.(*net.TCPConn).SetReadBuffer(4096)
	io.WriteString(c, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := io.ReadFull(c, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case a := <-h.after:
		if a[1] >= int64(len(data)) {
			t.Errorf("CopyN reported the whole body (%d bytes) sent to a client that left", a[1])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler is still sending 10s after the client left")
	}
}

// pipeHandler answers GET /file with n bytes read from a pipe through ReadFrom:
// an *os.File that sendfile(2) cannot read, which must be copied instead.
type pipeHandler struct {
	r      *os.File
	length []string
	n      int64
}

func (h *pipeHandler) ServeFast(w *ResponseWriter, r *http.Request) bool {
	w.Header()["Content-Length"] = h.length
	w.Header()["Content-Type"] = octetStream
	io.CopyN(w, h.r, h.n)
	return true
}

func TestReadFromPipeIsCopied(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close(); pw.Close() })
	_, data := writeTestFile(t, 200_000)
	go pw.Write(data)
	h := &pipeHandler{r: pr, n: int64(len(data)), length: []string{strconv.Itoa(len(data))}}
	s := &Server{Handler: h, Fallback: &http.Server{}, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, WriteTimeout: time.Minute}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	c := dial(t, ln.Addr().String())
	io.WriteString(c, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
	_, body := readResponse(t, c, make([]byte, 512<<10))
	if !bytes.Equal(body, data) {
		t.Fatalf("body of %d bytes differs from the %d bytes written to the pipe", len(body), len(data))
	}
}

// BenchmarkFastSendfile100K is a keep-alive GET of 100 KB sent from a file (Seek
// and io.CopyN, as the static handler sends a file too large for its memory
// cache) through the fast path's ReadFrom.
func BenchmarkFastSendfile100K(b *testing.B) {
	f, data := writeTestFile(b, 100<<10)
	h := &fileHandler{f: f}
	h.set(0, int64(len(data)))
	c, err := net.Dial("tcp", startFileServer(b, h))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /file HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\n\r\n")
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		c.Write(req)
		readResponse(b, c, buf)
	}
}

// TestReadFromFileOverTLS: on a TLS connection the socket underneath must never
// be written directly (the head with MSG_MORE, the file with sendfile(2)): the
// client has to receive the response encrypted, byte for byte.
func TestReadFromFileOverTLS(t *testing.T) {
	f, data := writeTestFile(t, 300_000)
	h := &fileHandler{f: f, after: make(chan [2]int64, 1)}
	h.set(1000, 200_000)
	cert := selfSigned(t)
	s := &Server{Handler: h, Fallback: &http.Server{}, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, WriteTimeout: time.Minute}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}))
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for range 2 {
		io.WriteString(c, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
		_, body := readResponse(t, c, make([]byte, 512<<10))
		if !bytes.Equal(body, data[1000:201_000]) {
			t.Fatalf("body of %d bytes differs from the file's bytes", len(body))
		}
		<-h.after
	}
}

// selfSigned makes a throwaway certificate for 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
