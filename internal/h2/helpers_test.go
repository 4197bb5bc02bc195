package h2

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"gantry/internal/peertest"
)

// testServer serves s on 127.0.0.1:0 over TLS as gantry's listener does
// (http1 hands it the connections that negotiate h2).
type testServer struct {
	s     *Server
	addr  string
	roots *tls.Config // a client's config trusting the server
	wg    sync.WaitGroup
}

func startServer(t *testing.T, s *Server) *testServer {
	t.Helper()
	cfg, roots := peertest.SelfSigned(t)
	cfg.NextProtos = []string{"h2"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{s: s, addr: ln.Addr().String(),
		roots: &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}, ServerName: "127.0.0.1"}}
	var mu sync.Mutex
	var socks []net.Conn
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			socks = append(socks, nc)
			mu.Unlock()
			ts.wg.Add(1)
			go func() {
				defer ts.wg.Done()
				tc := tls.Server(nc, cfg)
				if tc.HandshakeContext(context.Background()) != nil {
					nc.Close()
					return
				}
				base := context.WithValue(context.Background(), http.LocalAddrContextKey, nc.LocalAddr())
				s.ServeConn(base, tc, nc)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, nc := range socks {
			nc.Close()
		}
		mu.Unlock()
		ts.wg.Wait()
	})
	return ts
}

// client is a real HTTP/2 client (golang.org/x/net/http2) of ts.
func (ts *testServer) client(t *testing.T) *http.Client {
	tr := &http2.Transport{TLSClientConfig: ts.roots}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func (ts *testServer) url(path string) string { return "https://" + ts.addr + path }

// rawConn is a client speaking frames to ts, for what no well-behaved client
// sends.
type rawConn struct {
	t   *testing.T
	tc  *tls.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

func (ts *testServer) raw(t *testing.T, settings ...http2.Setting) *rawConn {
	t.Helper()
	tc, err := tls.Dial("tcp", ts.addr, ts.roots)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	tc.SetDeadline(time.Now().Add(20 * time.Second))
	rc := &rawConn{t: t, tc: tc, fr: http2.NewFramer(tc, tc)}
	rc.enc = hpack.NewEncoder(&rc.buf)
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	io.WriteString(tc, preface)
	rc.fr.WriteSettings(settings...)
	return rc
}

// headers encodes a GET of path (and extra fields, name then value).
func (rc *rawConn) headers(path string, extra ...string) []byte {
	rc.buf.Reset()
	fields := append([]string{":method", "GET", ":scheme", "https", ":path", path, ":authority", "localhost"}, extra...)
	for i := 0; i < len(fields); i += 2 {
		rc.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(rc.buf.Bytes())
}

func (rc *rawConn) get(id uint32, path string, end bool) {
	rc.t.Helper()
	if err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.headers(path), EndStream: end, EndHeaders: true}); err != nil {
		rc.t.Fatal(err)
	}
}

// until reads frames until match returns true, failing at the end of the
// connection.
func (rc *rawConn) until(what string, match func(http2.Frame) bool) http2.Frame {
	rc.t.Helper()
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("waiting for %s: %v", what, err)
		}
		if match(f) {
			return f
		}
	}
}

// goAway reads until the server's GOAWAY and returns its code, then expects
// the connection to end.
func (rc *rawConn) goAway() http2.ErrCode {
	rc.t.Helper()
	f := rc.until("GOAWAY", func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok }).(*http2.GoAwayFrame)
	return f.ErrCode
}

// closed reports whether the server closed the connection (reading until EOF).
func (rc *rawConn) closed() bool {
	for {
		if _, err := rc.fr.ReadFrame(); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}
