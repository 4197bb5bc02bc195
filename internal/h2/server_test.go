package h2

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"gantry/internal/peertest"
)

// seen is what a handler saw of its request.
type seen struct {
	method, path, query, host, proto, cookie, custom string
	contentLength                                    int64
	body                                             []byte
	bodyErr                                          error
	tls, remoteOK, localAddr                         bool
	trailer                                          string
}

func recordRequest(got chan<- seen) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := seen{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, host: r.Host, proto: r.Proto,
			cookie: r.Header.Get("Cookie"), custom: r.Header.Get("X-Custom"), contentLength: r.ContentLength,
			tls: r.TLS != nil && r.TLS.NegotiatedProtocol == "h2"}
		_, _, err := net.SplitHostPort(r.RemoteAddr)
		s.remoteOK = err == nil && strings.HasPrefix(r.RemoteAddr, "127.0.0.1:")
		_, s.localAddr = r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		s.body, s.bodyErr = io.ReadAll(r.Body)
		s.trailer = r.Trailer.Get("X-Sum")
		got <- s
		io.WriteString(w, "ok")
	}
}

// unsized hides a reader's type, so that the client sends no content-length.
type unsized struct{ io.Reader }

// What a handler sees of requests sent by a real HTTP/2 client.
func TestHandlerSeesRequest(t *testing.T) {
	got := make(chan seen, 1)
	ts := startServer(t, &Server{Handler: recordRequest(got)})
	c := ts.client(t)
	big := make([]byte, 3<<20) // beyond the stream and connection windows
	rand.Read(big)
	tests := []struct {
		name    string
		req     func() *http.Request
		want    seen
		wantLen int
	}{
		{"GET with headers and query", func() *http.Request {
			r, _ := http.NewRequest("GET", ts.url("/a/b?x=1&y=2"), nil)
			r.Header.Set("X-Custom", "value")
			r.AddCookie(&http.Cookie{Name: "a", Value: "1"})
			r.AddCookie(&http.Cookie{Name: "b", Value: "2"})
			return r
		}, seen{method: "GET", path: "/a/b", query: "x=1&y=2", cookie: "a=1; b=2", custom: "value", contentLength: 0}, 0},
		{"POST with content-length", func() *http.Request {
			r, _ := http.NewRequest("POST", ts.url("/post"), strings.NewReader("hello body"))
			return r
		}, seen{method: "POST", path: "/post", contentLength: 10}, 10},
		{"POST without content-length, larger than the windows", func() *http.Request {
			r, _ := http.NewRequest("PUT", ts.url("/up"), unsized{bytes.NewReader(big)})
			return r
		}, seen{method: "PUT", path: "/up", contentLength: -1}, len(big)},
		{"POST with trailers", func() *http.Request {
			r, _ := http.NewRequest("POST", ts.url("/tr"), unsized{strings.NewReader("abc")})
			r.Trailer = http.Header{"X-Sum": {"42"}}
			return r
		}, seen{method: "POST", path: "/tr", contentLength: -1, trailer: "42"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req()
			body := []byte{}
			if req.Body != nil {
				body, _ = io.ReadAll(tt.req().Body)
			}
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			s := <-got
			want := tt.want
			want.host, want.proto, want.tls, want.remoteOK, want.localAddr = ts.addr, "HTTP/2.0", true, true, true
			if s.bodyErr != nil {
				t.Errorf("reading the body: %v", s.bodyErr)
			}
			if !bytes.Equal(s.body, body) || len(s.body) != tt.wantLen {
				t.Errorf("body of %d bytes, want the %d sent", len(s.body), tt.wantLen)
			}
			s.body, s.bodyErr = nil, nil
			if fmt.Sprintf("%+v", s) != fmt.Sprintf("%+v", want) {
				t.Errorf("handler saw\n%+v\nwant\n%+v", s, want)
			}
		})
	}
}

// What a client sees of what handlers write.
func TestResponses(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	step := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>hi</html>") })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(big) })
	mux.HandleFunc("/trailers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Digest")
		io.WriteString(w, "body")
		w.Header().Set("X-Digest", "d1")
		w.Header().Set(http.TrailerPrefix+"X-Late", "l1")
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-step // the client has read the first line: it was flushed
		io.WriteString(w, "second\n")
	})
	ts := startServer(t, &Server{Handler: mux})
	c := ts.client(t)

	tests := []struct {
		name, method, path string
		status             int
		body               string
		header             map[string]string
		trailer            map[string]string
	}{
		{"small gets its length and a sniffed type", "GET", "/small", 200, "<html>hi</html>",
			map[string]string{"Content-Length": "15", "Content-Type": "text/html; charset=utf-8"}, nil},
		{"big, past every window", "GET", "/big", 200, string(big), nil, nil},
		{"HEAD has no body", "HEAD", "/small", 200, "", map[string]string{"Content-Length": ""}, nil},
		{"trailers", "GET", "/trailers", 200, "body", nil, map[string]string{"X-Digest": "d1", "X-Late": "l1"}},
		{"204", "GET", "/nocontent", 204, "", nil, nil},
		{"404 from the mux", "GET", "/nothing", 404, "404 page not found\n", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, ts.url(tt.path), nil)
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.status || string(b) != tt.body {
				t.Errorf("got %d with %d bytes, want %d with %d", res.StatusCode, len(b), tt.status, len(tt.body))
			}
			for k, v := range tt.header {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			for k, v := range tt.trailer {
				if got := res.Trailer.Get(k); got != v {
					t.Errorf("trailer %s: %q, want %q", k, got, v)
				}
			}
			if res.Header.Get("Date") == "" {
				t.Error("no Date")
			}
		})
	}
	t.Run("flush streams", func(t *testing.T) {
		res, err := c.Get(ts.url("/stream"))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		line := make([]byte, 6)
		if _, err := io.ReadFull(res.Body, line); err != nil || string(line) != "first\n" {
			t.Fatalf("first line %q, %v", line, err)
		}
		close(step)
		rest, _ := io.ReadAll(res.Body)
		if string(rest) != "second\n" {
			t.Errorf("then %q", rest)
		}
	})
}

// An inline answer larger than the client's window waits in the stream, and
// the reader sends the rest as the client grants window.
func TestInlineWaitsForWindow(t *testing.T) {
	body := strings.Repeat("x", 100)
	var memoryOnly bool
	s := &Server{
		Handler: http.NotFoundHandler(),
		Inline: func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/inline" {
				return false
			}
			memoryOnly = w.(interface{ MemoryOnly() bool }).MemoryOnly()
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, body)
			return true
		},
	}
	ts := startServer(t, s)
	rc := ts.raw(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 30})
	rc.get(1, "/inline", true)
	var got []byte
	for len(got) < len(body) {
		f := rc.until("DATA", func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok }).(*http2.DataFrame)
		if len(f.Data()) > 30 {
			t.Fatalf("a DATA frame of %d bytes in a window of 30", len(f.Data()))
		}
		got = append(got, f.Data()...)
		if f.StreamEnded() != (len(got) == len(body)) {
			t.Fatalf("END_STREAM after %d bytes", len(got))
		}
		if len(got) < len(body) {
			rc.fr.WriteWindowUpdate(1, uint32(len(f.Data())))
		}
	}
	if string(got) != body || !memoryOnly {
		t.Errorf("got %q; MemoryOnly %v", got, memoryOnly)
	}
}

// A request whose headers exceed MaxHeaderBytes gets 431, and the connection
// serves the next.
func TestHeaderListTooLarge(t *testing.T) {
	ts := startServer(t, &Server{Handler: http.NotFoundHandler(), MaxHeaderBytes: 1 << 10})
	rc := ts.raw(t)
	status := func(id uint32) string {
		f := rc.until("HEADERS", func(f http2.Frame) bool { return f.Header().StreamID == id && f.Header().Type == http2.FrameHeaders })
		for _, hf := range f.(*http2.MetaHeadersFrame).Fields {
			if hf.Name == ":status" {
				return hf.Value
			}
		}
		return ""
	}
	rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.headers("/", "x-big", strings.Repeat("b", 2<<10)),
		EndStream: true, EndHeaders: true})
	if s := status(1); s != "431" {
		t.Errorf("status %s, want 431", s)
	}
	rc.get(3, "/", true)
	if s := status(3); s != "404" {
		t.Errorf("the next request: status %s, want 404", s)
	}
}

// Hostile clients get a GOAWAY and lose their connection.
func TestHostileClients(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	tests := []struct {
		name string
		send func(rc *rawConn)
		code http2.ErrCode
	}{
		{"rapid reset", func(rc *rawConn) {
			// The server closes the connection part way through, so a
			// write failing ends the attack rather than the test.
			for id := uint32(1); id < 2*(maxResetScore+10); id += 2 {
				err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.headers("/"), EndStream: true, EndHeaders: true})
				if err != nil || rc.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
					return
				}
			}
		}, http2.ErrCodeEnhanceYourCalm},
		{"endless CONTINUATION", func(rc *rawConn) {
			rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.headers("/"), EndStream: true})
			chunk := bytes.Repeat([]byte{0}, 16<<10)
			for range 200 {
				if rc.fr.WriteContinuation(1, false, chunk) != nil {
					return
				}
			}
		}, http2.ErrCodeEnhanceYourCalm},
		{"frame larger than the maximum", func(rc *rawConn) {
			rc.fr.WriteRawFrame(http2.FrameData, 0, 1, make([]byte, 16<<10+1))
		}, http2.ErrCodeFrameSize},
		{"DATA beyond the window", func(rc *rawConn) {
			rc.get(1, "/", false)
			chunk := make([]byte, 16<<10)
			for range (streamWindow / len(chunk)) + 1 {
				rc.fr.WriteData(1, false, chunk)
			}
		}, http2.ErrCodeFlowControl},
		{"a bad HPACK block", func(rc *rawConn) {
			rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0xff, 0xff, 0xff, 0xff}, EndStream: true, EndHeaders: true})
		}, http2.ErrCodeCompression},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, &Server{Handler: h})
			rc := ts.raw(t)
			go tt.send(rc)
			if code := rc.goAway(); code != tt.code {
				t.Errorf("GOAWAY %v, want %v", code, tt.code)
			}
			if !rc.closed() {
				t.Error("the connection stays open")
			}
		})
	}
}

// A handler reading a body the client stops sending learns it when the client
// leaves, and its goroutine returns; a connection's ServeConn returns.
func TestClientLeavesMidBody(t *testing.T) {
	started := make(chan struct{})
	result := make(chan error, 1)
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		_, err := io.ReadAll(r.Body)
		<-r.Context().Done()
		result <- err
	})})
	rc := ts.raw(t)
	rc.get(1, "/", false)
	rc.fr.WriteData(1, false, []byte("part"))
	<-started
	rc.tc.Close()
	if err := <-result; err == nil {
		t.Error("the handler read the cut body without an error")
	}
	peertest.WaitFor(t, 10*time.Second, "the connection to end", func() bool {
		ts.s.mu.Lock()
		defer ts.s.mu.Unlock()
		return len(ts.s.conns) == 0
	})
}

// Shutdown sends GOAWAY; an open stream is still answered, and the connection
// then closes.
func TestShutdownWaitsForStreams(t *testing.T) {
	release := make(chan struct{})
	inHandler := make(chan struct{})
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inHandler)
		<-release
		io.WriteString(w, "done")
	})})
	rc := ts.raw(t)
	rc.get(1, "/", true)
	<-inHandler
	ts.s.Shutdown()
	f := rc.until("GOAWAY", func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok }).(*http2.GoAwayFrame)
	if f.ErrCode != http2.ErrCodeNo || f.LastStreamID != 1 {
		t.Errorf("GOAWAY %v for last stream %d", f.ErrCode, f.LastStreamID)
	}
	close(release)
	d := rc.until("the answer", func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok }).(*http2.DataFrame)
	if string(d.Data()) != "done" || !d.StreamEnded() {
		t.Errorf("answer %q", d.Data())
	}
	if !rc.closed() {
		t.Error("the connection stays open after its last stream")
	}
}

// Many concurrent streams on one connection all get their own answer.
func TestConcurrentStreams(t *testing.T) {
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s:%s", r.URL.Path, b)
	})})
	c := ts.client(t)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := fmt.Sprintf("/%d", i)
			res, err := c.Post(ts.url(path), "text/plain", strings.NewReader(strings.Repeat("x", i*100)))
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if want := path + ":" + strings.Repeat("x", i*100); string(b) != want {
				errs <- fmt.Errorf("%s: got %d bytes", path, len(b))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A connection with no stream is closed after IdleTimeout with a GOAWAY; one
// whose stream is open longer than the preface timeout is not cut.
func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	ts := startServer(t, &Server{IdleTimeout: 300 * time.Millisecond, PrefaceTimeout: 100 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-release
			io.WriteString(w, "late")
		})})
	rc := ts.raw(t)
	rc.get(1, "/", true)
	start := time.Now()
	peertest.WaitFor(t, 10*time.Second, "the preface timeout to pass", func() bool { return time.Since(start) > 300*time.Millisecond })
	close(release)
	d := rc.until("the answer", func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok }).(*http2.DataFrame)
	if string(d.Data()) != "late" {
		t.Errorf("answer %q", d.Data())
	}
	if code := rc.goAway(); code != http2.ErrCodeNo {
		t.Errorf("idle GOAWAY %v", code)
	}
	if !rc.closed() {
		t.Error("the idle connection stays open")
	}
}

// A body the client stops sending fails the handler's read after ReadTimeout.
func TestReadTimeout(t *testing.T) {
	result := make(chan error, 1)
	ts := startServer(t, &Server{ReadTimeout: 200 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		result <- err
	})})
	rc := ts.raw(t)
	rc.get(1, "/", false)
	rc.fr.WriteData(1, false, []byte("part"))
	if err := <-result; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the handler's read: %v, want a deadline error", err)
	}
}

// A handler that panics resets its own stream; the connection serves on.
func TestHandlerPanic(t *testing.T) {
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, "fine")
	})})
	rc := ts.raw(t)
	rc.get(1, "/panic", true)
	f := rc.until("RST_STREAM", func(f http2.Frame) bool { _, ok := f.(*http2.RSTStreamFrame); return ok }).(*http2.RSTStreamFrame)
	if f.StreamID != 1 || f.ErrCode != http2.ErrCodeInternal {
		t.Errorf("RST_STREAM %v on stream %d", f.ErrCode, f.StreamID)
	}
	rc.get(3, "/", true)
	d := rc.until("DATA", func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok }).(*http2.DataFrame)
	if d.StreamID != 3 || string(d.Data()) != "fine" {
		t.Errorf("stream %d: %q", d.StreamID, d.Data())
	}
}

// The write timeout resets a stream whose client grants no window, and its
// handler returns; inline answers stop holding memory for such a client past
// maxPendingInline: later requests go to handlers.
func TestNoWindow(t *testing.T) {
	body := bytes.Repeat([]byte("y"), 40<<10)
	handlerErr := make(chan error, 8)
	inlined := 0
	s := &Server{
		WriteTimeout: 200 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, err := w.Write(body)
			handlerErr <- err
		}),
		Inline: func(w http.ResponseWriter, r *http.Request) bool {
			inlined++
			w.Write(body)
			return true
		},
	}
	ts := startServer(t, s)
	rc := ts.raw(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	// 40 KiB waits in stream 1 and 40 KiB in stream 3: past 64 KiB, stream 5
	// goes to a handler, which the write timeout ends.
	for id := uint32(1); id <= 5; id += 2 {
		rc.get(id, "/", true)
	}
	f := rc.until("RST_STREAM", func(f http2.Frame) bool { _, ok := f.(*http2.RSTStreamFrame); return ok }).(*http2.RSTStreamFrame)
	if f.StreamID != 5 || f.ErrCode != http2.ErrCodeCancel {
		t.Errorf("RST_STREAM %v on stream %d, want CANCEL on 5", f.ErrCode, f.StreamID)
	}
	if err := <-handlerErr; err == nil {
		t.Error("the handler's write succeeded")
	}
	if inlined != 2 {
		t.Errorf("%d answers inline, want 2", inlined)
	}
}
