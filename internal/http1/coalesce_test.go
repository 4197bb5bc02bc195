package http1

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"gantry/internal/h2"
	"gantry/internal/peertest"
)

// tcpPair is a connected loopback TCP pair.
func tcpPair(t *testing.T) (server, client net.Conn) {
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
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func TestCoalesceConn(t *testing.T) {
	t.Run("bytes arrive whole and in order, then EOF at Close", func(t *testing.T) {
		server, client := tcpPair(t)
		c := newCoalesceConn(server)
		c.coalesce()
		var want bytes.Buffer
		got := make(chan []byte)
		go func() {
			b, _ := io.ReadAll(client)
			got <- b
		}()
		for i := range 5000 {
			p := fmt.Appendf(nil, "write %d;", i)
			if i%500 == 0 {
				p = bytes.Repeat([]byte{byte(i)}, 20000) // more than a buffer holds
			}
			want.Write(p)
			if n, err := c.Write(p); n != len(p) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if b := <-got; !bytes.Equal(b, want.Bytes()) {
			t.Errorf("read %d bytes, want the %d written", len(b), want.Len())
		}
		if _, err := c.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Write after Close: %v", err)
		}
	})

	t.Run("a slow reader holds the writer back", func(t *testing.T) {
		server, client := net.Pipe()
		defer client.Close()
		c := newCoalesceConn(server)
		c.coalesce()
		defer c.Close()
		var written atomic.Int64
		go func() {
			p := make([]byte, 8<<10)
			for range 64 {
				if _, err := c.Write(p); err != nil {
					return
				}
				written.Add(int64(len(p)))
			}
		}()
		buf := make([]byte, 1<<10)
		read := 0
		for read < 64*8<<10 {
			// What Write took and the reader has not: the batch the flusher
			// writes and the buffer, each under the gathered bound before its
			// last Write.
			if ahead := written.Load() - int64(read); ahead > 2*(maxGathered+8<<10) {
				t.Fatalf("writes ran %d bytes ahead of the reader", ahead)
			}
			n, err := client.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			read += n
		}
	})

	t.Run("a write error ends writes and reads", func(t *testing.T) {
		server, client := tcpPair(t)
		c := newCoalesceConn(server)
		c.coalesce()
		defer c.Close()
		client.(*net.TCPConn).SetLinger(0)
		client.Close() // a reset: writes fail
		peertest.WaitFor(t, 10*time.Second, "a Write to fail", func() bool {
			_, err := c.Write(make([]byte, 4<<10))
			return err != nil
		})
		if _, err := server.Read(make([]byte, 1)); err == nil {
			t.Error("the socket still reads after its write failed")
		}
	})

	t.Run("before coalesce a write goes straight to the socket", func(t *testing.T) {
		server, client := net.Pipe()
		defer client.Close()
		c := newCoalesceConn(server)
		defer c.Close()
		// net.Pipe has no buffer: the Write returns once the reader has it all.
		done := make(chan error, 1)
		go func() { _, err := c.Write([]byte("direct")); done <- err }()
		b := make([]byte, 6)
		if _, err := io.ReadFull(client, b); err != nil || string(b) != "direct" {
			t.Fatalf("read %q, %v", b, err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// HTTP/2 through the fast path's TLS listener, whose writes are gathered: many
// concurrent streams get their own whole responses, and a Shutdown's GOAWAY
// reaches the client before the connection closes.
func TestHTTP2WritesGathered(t *testing.T) {
	for _, own := range []bool{false, true} {
		t.Run(map[bool]string{false: "net/http", true: "internal/h2"}[own], func(t *testing.T) {
			testHTTP2WritesGathered(t, own)
		})
	}
}

func testHTTP2WritesGathered(t *testing.T, own bool) {
	tc, pool := peertest.SelfSigned(t)
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KB: several DATA frames
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s\n", r.URL.Path)
		w.Write(body)
	})
	fb := &http.Server{Handler: h, TLSConfig: tc}
	s := &Server{Handler: declineAll{}, Fallback: fb, TLSConfig: tc}
	if own {
		s.H2 = &h2.Server{Handler: h}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(t.Context()) })

	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	url := "https://" + ln.Addr().String()
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(fmt.Sprintf("%s/%d", url, i))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			want := append(fmt.Appendf(nil, "/%d\n", i), body...)
			if err != nil || resp.ProtoMajor != 2 || !bytes.Equal(b, want) {
				t.Errorf("/%d: %s, %d bytes, %v", i, resp.Proto, len(b), err)
			}
		}()
	}
	wg.Wait()

	// A raw HTTP/2 client sees the GOAWAY that Shutdown sends.
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, conn)
	fr.WriteSettings()
	if _, err := fr.ReadFrame(); err != nil { // the server's SETTINGS
		t.Fatal(err)
	}
	go s.Shutdown(t.Context())
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("the connection ended without a GOAWAY: %v", err)
		}
		if _, ok := f.(*http2.GoAwayFrame); ok {
			break
		}
	}
}

// declineAll sends every request to Fallback.
type declineAll struct{}

func (declineAll) ServeFast(*ResponseWriter, *http.Request) bool { return false }
