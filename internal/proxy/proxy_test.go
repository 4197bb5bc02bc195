package proxy

import (
	"gantry/internal/config"

	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"gantry/internal/peertest"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestForwardedHeaders(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(echoHandler))
	plain := startFront(t, Options{Upstream: up, Route: "/"})
	trusting := startFront(t, Options{Upstream: up, Route: "/", TrustedProxies: []string{"127.0.0.0/8"}})
	c := client(t)

	tests := []struct {
		name   string
		front  *front
		header map[string]string
		want   map[string]string // "" means the header must be absent
	}{
		{
			name:  "fresh request",
			front: plain,
			want: map[string]string{
				"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http",
				"X-Forwarded-Host": "app.example", "X-Real-Ip": "127.0.0.1", "Forwarded": "",
			},
		},
		{
			name:  "spoofed forwarding headers from an untrusted client are replaced",
			front: plain,
			header: map[string]string{
				"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https",
				"X-Forwarded-Host": "evil.example", "Forwarded": "for=6.6.6.6", "X-Real-IP": "6.6.6.6",
			},
			want: map[string]string{
				"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http",
				"X-Forwarded-Host": "app.example", "Forwarded": "", "X-Real-Ip": "127.0.0.1",
			},
		},
		{
			name:  "trusted proxy: X-Forwarded-For appended, its proto and host kept",
			front: trusting,
			header: map[string]string{
				"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https",
				"X-Forwarded-Host": "www.example", "X-Real-IP": "203.0.113.7",
			},
			want: map[string]string{
				"X-Forwarded-For": "203.0.113.7, 127.0.0.1", "X-Forwarded-Proto": "https",
				"X-Forwarded-Host": "www.example", "X-Real-Ip": "203.0.113.7",
			},
		},
		{
			name:   "trusted proxy without forwarding headers",
			front:  trusting,
			header: map[string]string{},
			want: map[string]string{
				"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "app.example",
			},
		},
		{
			// CVE-2021-33197: a client naming gantry's headers in Connection
			// must not make the proxy strip them after setting them.
			name:  "Connection naming forwarding headers does not remove them",
			front: plain,
			header: map[string]string{
				"Connection": "X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Real-IP, Forwarded",
			},
			want: map[string]string{
				"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http",
				"X-Forwarded-Host": "app.example", "X-Real-Ip": "127.0.0.1",
			},
		},
		{
			name:   "Connection naming forwarding headers from a trusted proxy",
			front:  trusting,
			header: map[string]string{"Connection": "X-Forwarded-For", "X-Forwarded-For": "203.0.113.7"},
			want:   map[string]string{"X-Forwarded-For": "203.0.113.7, 127.0.0.1"},
		},
		{
			name:  "hop-by-hop headers are stripped, including ones named in Connection",
			front: plain,
			header: map[string]string{
				"Connection": "close, X-Hop", "X-Hop": "1", "Keep-Alive": "timeout=5",
				"Proxy-Authorization": "Basic Zm9vOmJhcg==", "Te": "gzip", "X-End-To-End": "kept",
			},
			want: map[string]string{
				"X-Hop": "", "Keep-Alive": "", "Proxy-Authorization": "", "Te": "", "X-End-To-End": "kept",
			},
		},
		{
			name:   "httpoxy: Proxy header never forwarded",
			front:  plain,
			header: map[string]string{"Proxy": "http://evil.example:8080"},
			want:   map[string]string{"Proxy": ""},
		},
		{
			name:   "end-to-end headers pass",
			front:  plain,
			header: map[string]string{"Authorization": "Bearer x", "Cookie": "a=b", "Accept-Encoding": "gzip"},
			want:   map[string]string{"Authorization": "Bearer x", "Cookie": "a=b", "Accept-Encoding": "gzip"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", tc.front.URL+"/hdr", nil)
			req.Host = "app.example"
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			got := getSeen(t, c, req)
			for k, v := range tc.want {
				vals := got.Header.Values(k)
				if v == "" {
					if len(vals) != 0 {
						t.Errorf("%s = %q, want it absent", k, vals)
					}
					continue
				}
				if len(vals) != 1 || vals[0] != v {
					t.Errorf("%s = %q, want %q", k, vals, v)
				}
			}
		})
	}
}

func TestResponseHopByHopStripped(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Internal")
		w.Header().Set("X-Internal", "secret")
		w.Header().Set("Keep-Alive", "timeout=1")
		w.Header().Set("X-App", "yes")
		io.WriteString(w, "ok")
	}))
	f := startFront(t, Options{Upstream: up, Route: "/"})
	res, err := client(t).Get(f.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("X-Internal") != "" || res.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop response headers reached the client: %v", res.Header)
	}
	if res.Header.Get("X-App") != "yes" {
		t.Errorf("X-App = %q, want yes", res.Header.Get("X-App"))
	}
}

func TestHostHeader(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(echoHandler))
	tests := []struct {
		name string
		opt  string
		want string
	}{
		{"client Host passed by default", "", "app.example"},
		{"HostHeader overrides", "internal.local", "internal.local"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFront(t, Options{Upstream: up, Route: "/", HostHeader: tc.opt})
			req, _ := http.NewRequest("GET", f.URL+"/", nil)
			req.Host = "app.example"
			if got := getSeen(t, client(t), req); got.Host != tc.want {
				t.Errorf("upstream saw Host %q, want %q", got.Host, tc.want)
			}
		})
	}
}

func TestPathMappingEndToEnd(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(echoHandler))
	tests := []struct {
		name     string
		upstream string
		route    string
		reqURI   string
		want     string
	}{
		{"no base path: original path kept", up, "/app/", "/app/x?q=1", "/app/x?q=1"},
		{"base / strips the prefix", up + "/", "/app/", "/app/x/y?q=1", "/x/y?q=1"},
		{"base replaces the prefix", up + "/api/", "/app/", "/app/v1/items", "/api/v1/items"},
		{"base without slash still joins with one", up + "/api", "/app/", "/app/v1", "/api/v1"},
		{"encoded slash stays encoded", up + "/api/", "/app/", "/app/a%2Fb", "/api/a%2Fb"},
		{"encoded slash passes through", up, "/", "/a%2Fb?x=%20", "/a%2Fb?x=%20"},
		{"exact route", up + "/status", "/health", "/health?v=1", "/status?v=1"},
		{"upstream query merged", up + "/api/?key=k", "/app/", "/app/x?q=1", "/api/x?key=k&q=1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFront(t, Options{Upstream: tc.upstream, Route: tc.route})
			req, _ := http.NewRequest("GET", f.URL+tc.reqURI, nil)
			if got := getSeen(t, client(t), req); got.URI != tc.want {
				t.Errorf("upstream saw %q, want %q", got.URI, tc.want)
			}
		})
	}
}

func TestDotSegmentsCannotLeaveBase(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(echoHandler))
	f := startFront(t, Options{Upstream: up + "/api/", Route: "/app/"})
	// Raw bytes: Go's client would clean the path before sending it.
	out := rawRoundTrip(t, f.Addr, "GET /app/../../%2e%2e/admin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if !strings.Contains(out, `"uri":"/api/admin"`) {
		t.Errorf("upstream did not see /api/admin:\n%s", out)
	}
}

func TestUnixSocketUpstream(t *testing.T) {
	up := startUnixUpstream(t, http.HandlerFunc(echoHandler))
	f := startFront(t, Options{Upstream: up, Route: "/"})
	body := strings.Repeat("0123456789", 100_000)
	req, _ := http.NewRequest("POST", f.URL+"/submit?x=1", strings.NewReader(body))
	req.Host = "app.example"
	got := getSeen(t, client(t), req)
	if got.URI != "/submit?x=1" || got.Method != "POST" || got.Host != "app.example" {
		t.Errorf("upstream saw %s %s Host %s", got.Method, got.URI, got.Host)
	}
	if sha256.Sum256([]byte(got.Body)) != sha256.Sum256([]byte(body)) {
		t.Errorf("body of %d bytes arrived as %d bytes", len(body), len(got.Body))
	}
}

func TestUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	tests := []struct {
		name     string
		upstream string
	}{
		{"tcp port closed", dead},
		{"unix socket missing", "unix:" + t.TempDir() + "/none.sock"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFront(t, Options{Upstream: tc.upstream, Route: "/"})
			res, err := client(t).Get(f.URL + "/x")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusBadGateway {
				t.Errorf("status %d, want 502", res.StatusCode)
			}
			if log := f.Log.String(); !strings.Contains(log, tc.upstream) || !strings.Contains(log, "status=502") {
				t.Errorf("log does not name the upstream and status:\n%s", log)
			}
		})
	}
}

func TestUpstreamSlowIs504(t *testing.T) {
	release := make(chan struct{})
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release) })
	f := startFront(t, Options{Upstream: up, Route: "/", Timeout: config.Duration(100 * time.Millisecond)})
	res, err := client(t).Get(f.URL + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("status %d, want 504", res.StatusCode)
	}
	if log := f.Log.String(); !strings.Contains(log, up) || !strings.Contains(log, "status=504") {
		t.Errorf("log does not name the upstream and status:\n%s", log)
	}
}

func TestMalformedUpstreamResponseIs502(t *testing.T) {
	up := peertest.RawUpstream(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "NOT HTTP AT ALL\r\n\r\n")
	})
	f := startFront(t, Options{Upstream: up, Route: "/"})
	res, err := client(t).Get(f.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", res.StatusCode)
	}
}

func TestRequestBodyStreamed(t *testing.T) {
	gotFirst := make(chan string, 1)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			gotFirst <- "error: " + err.Error()
			return
		}
		gotFirst <- string(buf)
		rest, _ := io.ReadAll(r.Body)
		io.WriteString(w, string(buf)+string(rest))
	}))
	f := startFront(t, Options{Upstream: up, Route: "/"})
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", f.URL+"/upload", pr)
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		res, err := client(t).Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		done <- result{string(b), err}
	}()
	io.WriteString(pw, "first")
	// The rest of the body is withheld until the upstream has the first
	// part: a proxy that buffered whole bodies would never get there.
	select {
	case s := <-gotFirst:
		if s != "first" {
			t.Fatalf("upstream read %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("upstream did not receive the start of the body before the client finished sending it")
	}
	io.WriteString(pw, " and the rest")
	pw.Close()
	r := <-done
	if r.err != nil || r.body != "first and the rest" {
		t.Errorf("response %q, %v", r.body, r.err)
	}
}

func TestServerSentEventsFlushed(t *testing.T) {
	next := make(chan struct{})
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: two\n\n")
	}))
	f := startFront(t, Options{Upstream: up, Route: "/"})
	res, err := client(t).Get(f.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	// The upstream holds "two" back until the client has read "one"; if the
	// proxy buffered the stream this read would block forever (bounded by
	// the client timeout).
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event %q, %v", line, err)
	}
	close(next)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: two\n\n" {
		t.Errorf("rest of stream %q", rest)
	}
}

func TestClientGoneIsNotAnUpstreamError(t *testing.T) {
	entered := make(chan struct{})
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	}))
	f := startFront(t, Options{Upstream: up, Route: "/"})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", f.URL+"/", nil)
	errc := make(chan error, 1)
	go func() {
		res, err := client(t).Do(req)
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	<-entered
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v", err)
	}
	peertest.WaitFor(t, 10*time.Second, "the client-closed log line", func() bool { return strings.Contains(f.Log.String(), "client closed request") })
	if strings.Contains(f.Log.String(), "upstream failed") {
		t.Errorf("a client hanging up was logged as an upstream failure:\n%s", f.Log.String())
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"empty upstream", Options{}, "upstream is empty"},
		{"bad scheme", Options{Upstream: "ftp://h/"}, "scheme must be"},
		{"missing host", Options{Upstream: "http:///x"}, "missing host"},
		{"relative socket", Options{Upstream: "unix:run/app.sock"}, "must be absolute"},
		{"user info", Options{Upstream: "http://u:p@h"}, "user info"},
		{"bare host:port", Options{Upstream: "127.0.0.1:3000"}, "127.0.0.1:3000"},
		{"negative timeout", Options{Upstream: "http://h", Timeout: -1}, "negative timeout"},
		{"bad trusted proxy", Options{Upstream: "http://h", TrustedProxies: []string{"10.0.0.0/33"}}, "trusted proxy"},
		{"bad host header", Options{Upstream: "http://h", HostHeader: "a b"}, "host header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "proxy: ") {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// The server enforces max_body with http.MaxBytesReader; a proxied request
// over the limit must be 413 for the client, not an upstream 502.
func TestBodyOverServerLimitIs413(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(echoHandler))
	h, err := New(Options{Upstream: up, Route: "/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1000)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	tests := []struct {
		name string
		size int
		want int
	}{
		{"under the limit", 1000, http.StatusOK},
		{"over the limit", 100_000, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// An unknown length (chunked) so the limit trips while streaming.
			body := io.MultiReader(strings.NewReader(strings.Repeat("x", tc.size)))
			res, err := client(t).Post(s.URL+"/", "text/plain", body)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Errorf("status %d, want %d", res.StatusCode, tc.want)
			}
		})
	}
}

// TestBadRequestBodyIsNotAnUpstreamError sends a chunked body with a malformed
// chunk-size line: the client gets 400, and the log names the body, not the
// upstream, below error level (any client can send as many as it likes).
func TestBadRequestBodyIsNotAnUpstreamError(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	f := startFront(t, Options{Upstream: up, Route: "/"})
	c, err := net.Dial("tcp", strings.TrimPrefix(f.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\nzz\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
	log := f.Log.String()
	if strings.Contains(log, "upstream failed") || strings.Contains(log, "level=ERROR") {
		t.Errorf("a client's bad body was logged as an upstream error:\n%s", log)
	}
	if !strings.Contains(log, "request body refused") {
		t.Errorf("no log line names the refused body:\n%s", log)
	}
}
