package h2

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// FuzzConn feeds a connection the preface, a SETTINGS frame and then any
// bytes: whatever they are, the connection ends once the client has gone,
// and every handler it started returns; nothing panics.
func FuzzConn(f *testing.F) {
	get := unhex(f, "000005 01 05 00000001 82 84 87 41 00") // GET / with an empty :authority
	f.Add(get)
	// a POST whose body ends with trailers
	f.Add(unhex(f, "000003 01 04 00000001 83 84 87 000004 00 00 00000001 61626364 000001 01 05 00000001 40"))
	// a stream reset, then its DATA
	f.Add(unhex(f, "000003 01 04 00000001 83 84 87 000004 03 00 00000001 00000008 000001 00 01 00000001 78"))
	// a window update, a ping and a settings change mid-stream
	f.Add(unhex(f, "000003 01 05 00000001 82 84 87 000004 08 00 00000001 00000010 000008 06 00 00000000 0102030405060708 000006 04 00 00000000 0004 00000001"))
	// an unfinished header block
	f.Add(unhex(f, "000003 01 00 00000001 82 84 87 000001 09 00 00000003 87"))
	f.Fuzz(func(t *testing.T, in []byte) {
		handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Trailer", "X-T")
			w.Write(make([]byte, 70000))
			w.Header().Set("X-T", "t")
		})
		var started, returned atomic.Int64
		counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			started.Add(1)
			defer returned.Add(1)
			handler(w, r)
		})
		s := &Server{Handler: counted, Inline: func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/" {
				return false
			}
			w.Write(make([]byte, 70000)) // past the default window: it waits in the stream
			return true
		}}
		server, client := net.Pipe()
		done := make(chan struct{})
		c := newConn(s, context.Background(), server, tls.ConnectionState{}, server)
		go func() {
			defer close(done)
			c.serve()
		}()
		go io.Copy(io.Discard, client)
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		client.Write([]byte(preface))
		client.Write(unhex(t, "000000 04 00 00000000"))
		client.Write(in)
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the connection did not end after the client left")
		}
		// A handler runs on a pooled goroutine; once the connection has
		// ended, every one started must return.
		peertest.WaitFor(t, 10*time.Second, "the handlers to return after the client left", func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.running == 0 && returned.Load() == started.Load()
		})
	})
}
