package sendtimeout

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pair returns a wrapped server side of a TCP connection and its client side.
func pair(t *testing.T, d time.Duration) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = Listener(ln, d).Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// slowSource is an upstream that takes longer than the write timeout before each
// piece: waiting for it is not the client's fault.
type slowSource struct {
	pieces [][]byte
	gap    time.Duration
}

func (s *slowSource) Read(p []byte) (int, error) {
	if len(s.pieces) == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.gap) // the upstream being slow, not a wait for readiness
	n := copy(p, s.pieces[0])
	s.pieces = s.pieces[1:]
	return n, nil
}

func TestCopy(t *testing.T) {
	const d = 100 * time.Millisecond
	data := bytes.Repeat([]byte("0123456789abcdef"), (3*Chunk+1000)/16)
	name := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		src  func(t *testing.T) io.Reader
		want []byte
		left int64 // N left in the io.LimitedReader, -1 when none
	}{
		{"whole file", func(t *testing.T) io.Reader { return open(t, name) }, data, -1},
		{"limited file, less than the file", func(t *testing.T) io.Reader {
			return io.LimitReader(open(t, name), Chunk+5)
		}, data[:Chunk+5], 0},
		{"limited file, more than the file", func(t *testing.T) io.Reader {
			return io.LimitReader(open(t, name), int64(len(data))+10)
		}, data, 10},
		{"slow upstream: pauses longer than the timeout", func(t *testing.T) io.Reader {
			return &slowSource{pieces: [][]byte{[]byte("one "), []byte("two "), []byte("three")}, gap: 2 * d}
		}, []byte("one two three"), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server, client := pair(t, d)
			got := make(chan []byte)
			go func() {
				b, _ := io.ReadAll(client)
				got <- b
			}()
			src := tc.src(t)
			n, err := server.(io.ReaderFrom).ReadFrom(src)
			if err != nil || n != int64(len(tc.want)) {
				t.Fatalf("ReadFrom = %d, %v; want %d, nil", n, err, len(tc.want))
			}
			if lr, ok := src.(*io.LimitedReader); ok && lr.N != tc.left {
				t.Errorf("LimitedReader.N = %d after, want %d", lr.N, tc.left)
			}
			server.Close()
			if b := <-got; !bytes.Equal(b, tc.want) {
				t.Errorf("client got %d bytes, want %d", len(b), len(tc.want))
			}
		})
	}
}

func open(t *testing.T, name string) *os.File {
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
