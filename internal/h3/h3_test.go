package h3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"gantry/internal/peertest"
)

// serve starts a Server for h on 127.0.0.1:0 and returns it, the result of its
// Serve (once Serve returns) and a client trusting its certificate.
func serve(t *testing.T, h http.Handler) (*Server, <-chan error, *http.Client) {
	t.Helper()
	cfg, pool := peertest.SelfSigned(t)
	s, err := Listen(context.Background(), "127.0.0.1:0", Options{Handler: h, TLSConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() { s.Close() })
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(func() { tr.Close() })
	return s, served, &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// echo reports what a handler saw of the request.
func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sum := sha256.Sum256(body)
	alpn := ""
	if r.TLS != nil {
		alpn = r.TLS.NegotiatedProtocol
	}
	fmt.Fprintf(w, "proto=%s tls=%v alpn=%s method=%s cl=%d len=%d sha=%.16s",
		r.Proto, r.TLS != nil, alpn, r.Method, r.ContentLength, len(body), hex.EncodeToString(sum[:]))
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRequests(t *testing.T) {
	s, _, c := serve(t, http.HandlerFunc(echo))
	base := "https://127.0.0.1:" + strconv.Itoa(s.Port())
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1MB: many DATA frames
	sha := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:])[:16] }
	cases := []struct {
		name   string
		method string
		body   io.Reader
		length int64
		want   string
	}{
		{"get", "GET", nil, 0, "proto=HTTP/3.0 tls=true alpn=h3 method=GET cl=-1 len=0 sha=" + sha(nil)},
		{"post with length", "POST", bytes.NewReader(big), int64(len(big)),
			fmt.Sprintf("proto=HTTP/3.0 tls=true alpn=h3 method=POST cl=%d len=%d sha=%s", len(big), len(big), sha(big))},
		// A reader that hides its length: the client sends no Content-Length.
		{"post of unknown length", "POST", struct{ io.Reader }{bytes.NewReader(big)}, -1,
			fmt.Sprintf("proto=HTTP/3.0 tls=true alpn=h3 method=POST cl=-1 len=%d sha=%s", len(big), sha(big))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+"/x", tc.body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = tc.length
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if got := body(t, resp); resp.StatusCode != 200 || got != tc.want {
				t.Errorf("got %d %q\nwant 200 %q", resp.StatusCode, got, tc.want)
			}
			if v := resp.Header.Get("Alt-Svc"); v != "" {
				t.Errorf("an HTTP/3 response announces Alt-Svc %q", v)
			}
		})
	}
}

// gantry answers a body it will not read with "Connection: close"; over HTTP/3
// that field makes the whole response malformed, so it must not go out.
func TestConnectionFieldsStripped(t *testing.T) {
	s, _, c := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Transfer-Encoding", "chunked")
		w.Header().Set("X-Kept", "yes")
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	}))
	resp, err := c.Get("https://127.0.0.1:" + strconv.Itoa(s.Port()) + "/")
	if err != nil {
		t.Fatalf("client refused the response: %v", err)
	}
	if got := body(t, resp); resp.StatusCode != 413 || got != "too large\n" || resp.Header.Get("X-Kept") != "yes" {
		t.Errorf("got %d %q %v", resp.StatusCode, got, resp.Header)
	}
}

func TestAltSvc(t *testing.T) {
	h := AltSvc(4433, http.HandlerFunc(echo))
	tlsSrv := httptest.NewUnstartedServer(h)
	tlsSrv.EnableHTTP2 = true
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	plain := httptest.NewServer(h)
	t.Cleanup(plain.Close)
	pool := x509.NewCertPool()
	pool.AddCert(tlsSrv.Certificate())
	client := func(h2 bool) *http.Client {
		p := new(http.Protocols)
		p.SetHTTP1(!h2)
		p.SetHTTP2(h2)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Protocols: p}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	cases := []struct {
		name   string
		client *http.Client
		url    string
		proto  string
		want   string
	}{
		{"https http/1.1", client(false), tlsSrv.URL, "HTTP/1.1", `h3=":4433"; ma=86400`},
		{"https h2", client(true), tlsSrv.URL, "HTTP/2.0", `h3=":4433"; ma=86400`},
		{"plain http", plain.Client(), plain.URL, "HTTP/1.1", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.client.Get(tc.url + "/")
			if err != nil {
				t.Fatal(err)
			}
			body(t, resp)
			if resp.Proto != tc.proto {
				t.Fatalf("client spoke %s, want %s", resp.Proto, tc.proto)
			}
			if got := resp.Header.Values("Alt-Svc"); len(got) > 1 || resp.Header.Get("Alt-Svc") != tc.want {
				t.Errorf("Alt-Svc %q, want %q", got, tc.want)
			}
		})
	}
}

// Shutdown lets a request in flight finish, takes no new one, and returns once
// the connections are closed.
func TestShutdownGraceful(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s, served, c := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		io.WriteString(w, "done "+r.URL.Path)
	}))
	base := "https://127.0.0.1:" + strconv.Itoa(s.Port())
	type result struct {
		status int
		body   string
		err    error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := c.Get(base + "/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- result{resp.StatusCode, string(b), err}
	}()
	<-entered
	shut := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() { shut <- s.Shutdown(ctx) }()
	peertest.WaitFor(t, 0, "Serve to return after Shutdown", func() bool { return len(served) == 1 })
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
	}
	// A new connection is not accepted any more.
	fresh := &http3.Transport{TLSClientConfig: c.Transport.(*http3.Transport).TLSClientConfig}
	defer fresh.Close()
	qctx, qcancel := context.WithTimeout(context.Background(), time.Second)
	defer qcancel()
	req, _ := http.NewRequestWithContext(qctx, "GET", base+"/new", nil)
	if resp, err := fresh.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Errorf("a new connection was served during shutdown: %d", resp.StatusCode)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	default:
	}
	close(release)
	if r := <-slow; r.err != nil || r.status != 200 || r.body != "done /slow" {
		t.Errorf("in-flight request: %d %q %v, want 200 \"done /slow\"", r.status, r.body, r.err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// A request that outlives Shutdown's context is cut: its handler's context ends,
// and Shutdown says so.
func TestShutdownDeadline(t *testing.T) {
	entered, ended := make(chan struct{}), make(chan struct{})
	s, served, c := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
		close(ended)
	}))
	failed := make(chan error, 1)
	go func() {
		resp, err := c.Get("https://127.0.0.1:" + strconv.Itoa(s.Port()) + "/stuck")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		failed <- err
	}()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }()
	peertest.WaitFor(t, 0, "Serve to return after Shutdown", func() bool { return len(served) == 1 })
	cancel()
	if err := <-shut; !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown returned %v, want context.Canceled", err)
	}
	<-ended
	if err := <-failed; err == nil {
		t.Error("the cut request looked complete to the client")
	}
}

// After Close nothing of a server is left: no goroutine, no descriptor.
func TestNoLeak(t *testing.T) {
	cycle := func() {
		cfg, pool := peertest.SelfSigned(t)
		s, err := Listen(context.Background(), "127.0.0.1:0", Options{Handler: http.HandlerFunc(echo), TLSConfig: cfg})
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- s.Serve() }()
		tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		for i := range 3 {
			resp, err := c.Post(fmt.Sprintf("https://127.0.0.1:%d/%d", s.Port(), i), "text/plain", bytes.NewReader([]byte("hello")))
			if err != nil {
				t.Fatal(err)
			}
			body(t, resp)
		}
		tr.Close()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	}
	cycle() // starts what quic-go starts once per process
	fds, gs := peertest.OpenFDs(t), runtime.NumGoroutine()
	for range 3 {
		cycle()
	}
	peertest.WaitFor(t, 0, fmt.Sprintf("goroutines back to %d", gs), func() bool { return runtime.NumGoroutine() <= gs })
	peertest.WaitFor(t, 0, fmt.Sprintf("descriptors back to %d", fds), func() bool { return peertest.OpenFDs(t) <= fds })
}

func TestListenErrors(t *testing.T) {
	cfg, _ := peertest.SelfSigned(t)
	s, err := Listen(context.Background(), "127.0.0.1:0", Options{Handler: http.NotFoundHandler(), TLSConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Listen(context.Background(), s.Addr().String(), Options{Handler: http.NotFoundHandler(), TLSConfig: cfg}); err == nil {
		t.Error("a second server bound the same UDP port")
	}
	if _, err := Listen(context.Background(), "127.0.0.1:0", Options{TLSConfig: cfg}); err == nil {
		t.Error("a server without a handler was made")
	}
}

// QUIC starts with the first datagram: until then the port costs no quic-go
// goroutine. A datagram that is not QUIC starts it and is dropped, and the next
// client is served; a listener nobody used shuts down at once and frees its port.
func TestStartsOnFirstDatagram(t *testing.T) {
	// Goroutines are told apart by id: those of earlier tests may still be
	// ending while this one runs, so a count alone would move under it.
	quicGoroutines := func() map[string]bool {
		buf := make([]byte, 1<<20)
		ids := map[string]bool{}
		for _, g := range bytes.Split(buf[:runtime.Stack(buf, true)], []byte("\n\n")) {
			if id, _, ok := bytes.Cut(bytes.TrimPrefix(g, []byte("goroutine ")), []byte(" ")); ok && bytes.Contains(g, []byte("quic-go/quic-go.")) {
				ids[string(id)] = true
			}
		}
		return ids
	}
	before := quicGoroutines()
	started := func() int {
		n := 0
		for id := range quicGoroutines() {
			if !before[id] {
				n++
			}
		}
		return n
	}
	s, served, c := serve(t, http.HandlerFunc(echo))
	// Serve is waiting for a datagram, not yet in quic-go.
	peertest.WaitFor(t, 0, "Serve to wait", func() bool {
		buf := make([]byte, 1<<20)
		return bytes.Contains(buf[:runtime.Stack(buf, true)], []byte("h3.awaitDatagram"))
	})
	if n := started(); n != 0 {
		t.Errorf("an unused HTTP/3 port runs %d quic-go goroutines, want none", n)
	}

	junk, err := net.Dial("udp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	junk.Write([]byte("not a QUIC packet"))
	junk.Close()
	peertest.WaitFor(t, 0, "QUIC to start", func() bool { return started() > 0 })
	resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/after-junk", s.Port()))
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, resp); !strings.HasPrefix(b, "proto=HTTP/3.0 ") {
		t.Errorf("got %q", b)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}

	t.Run("never used", func(t *testing.T) {
		cfg, _ := peertest.SelfSigned(t)
		s, err := Listen(context.Background(), "127.0.0.1:0", Options{Handler: http.NotFoundHandler(), TLSConfig: cfg})
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- s.Serve() }()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
		pc, err := net.ListenPacket("udp", s.Addr().String())
		if err != nil {
			t.Fatalf("the port is still held: %v", err)
		}
		pc.Close()
	})
}
