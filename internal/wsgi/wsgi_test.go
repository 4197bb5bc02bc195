package wsgi

import (
	"gantry/internal/config"

	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gantry/internal/peertest"
	"gantry/internal/supervise"
)

// logBuf collects log output for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type site struct {
	h    *Handler
	srv  *httptest.Server
	logs *logBuf
}

func appsDir(t *testing.T) string {
	d, err := filepath.Abs("testdata/apps")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// startSite runs a Handler behind a real HTTP server on 127.0.0.1:0. wrap, when set,
// sits in front of it (the server's MaxBytesReader, a route mux).
func startSite(t *testing.T, opts Options, wrap func(http.Handler) http.Handler) *site {
	t.Helper()
	if opts.Python == "" {
		opts.Python = peertest.Python(t)
	}
	if opts.Chdir == "" {
		opts.Chdir = appsDir(t)
	}
	logs := &logBuf{}
	h, err := New(context.Background(), opts, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var handler http.Handler = h
	if wrap != nil {
		handler = wrap(h)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for _, w := range h.Workers() {
			t.Errorf("worker %d left after Shutdown", w.PID)
		}
	})
	return &site{h: h, srv: srv, logs: logs}
}

func (s *site) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirect.Get(s.srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", path, err)
	}
	return resp, string(b)
}

// modes are the WSGI modes this build runs; embedded_test.go adds "embedded" in a
// gantry built with -tags python, so that one table runs against both.
var modes = []string{modeDaemon}

func eachMode(t *testing.T, f func(t *testing.T, mode string)) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) { f(t, mode) })
	}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestEnviron(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		tests := []struct {
			name   string
			route  string
			path   string
			header map[string]string
			want   map[string]any
			absent []string
		}{
			{
				name: "root mount", route: "/", path: "/env?a=1&b=%20",
				want: map[string]any{"SCRIPT_NAME": "", "PATH_INFO": "/env", "QUERY_STRING": "a=1&b=%20",
					"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "127.0.0.1",
					"wsgi.url_scheme": "http", "wsgi.version": []any{1.0, 0.0}, "wsgi.multithread": true,
					"wsgi.multiprocess": mode == modeDaemon, "wsgi.run_once": false, "wsgi.input_terminated": true,
					"REQUEST_URI": "/env?a=1&b=%20"},
				absent: []string{"CONTENT_LENGTH"},
			},
			{
				name: "prefix mount sets SCRIPT_NAME", route: "/app/", path: "/app/env",
				want: map[string]any{"SCRIPT_NAME": "/app", "PATH_INFO": "/env"},
			},
			{
				name: "non-ASCII path arrives as Latin-1 bytes", route: "/", path: "/env/caf%C3%A9",
				want: map[string]any{"PATH_INFO": "/env/caf\u00c3\u00a9"},
			},
			{
				name: "headers: underscores dropped, no HTTP_PROXY, repeated joined", route: "/", path: "/env",
				header: map[string]string{"X-Custom": "v1", "X_Custom": "spoof", "Proxy": "http://evil", "Accept": "a"},
				want:   map[string]any{"HTTP_X_CUSTOM": "v1", "HTTP_ACCEPT": "a"},
				absent: []string{"HTTP_PROXY"},
			},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s := startSite(t, Options{Mode: mode, App: "testapp:application", Route: tc.route, Processes: 2, Threads: 2}, nil)
				req, _ := http.NewRequest("GET", s.srv.URL+tc.path, nil)
				for k, v := range tc.header {
					req.Header[k] = []string{v}
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var env map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || resp.StatusCode != 200 {
					t.Fatalf("status %d, decode: %v; log:\n%s", resp.StatusCode, err, s.logs)
				}
				for k, v := range tc.want {
					if got, _ := json.Marshal(env[k]); string(got) != mustJSON(v) {
						t.Errorf("%s = %s, want %s", k, got, mustJSON(v))
					}
				}
				for _, k := range tc.absent {
					if v, ok := env[k]; ok {
						t.Errorf("%s = %v, want absent", k, v)
					}
				}
				if env["HTTP_X_CUSTOM"] == "spoof" {
					t.Error("header with underscore overrode X-Custom")
				}
			})
		}
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestProcessEnvAndChdir(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		dir := appsDir(t)
		s := startSite(t, Options{Mode: mode, App: "testapp:application", Env: map[string]string{"GANTRY_TEST_VAR": "hello"}}, nil)
		_, body := s.get(t, "/env?osenv=GANTRY_TEST_VAR")
		var env map[string]any
		json.Unmarshal([]byte(body), &env)
		if got := env["os.environ"].(map[string]any)["GANTRY_TEST_VAR"]; got != "hello" {
			t.Errorf("os.environ[GANTRY_TEST_VAR] = %v, want hello", got)
		}
		// A daemon-mode worker runs in chdir; an embedded app shares gantry's
		// process and its working directory, and finds its modules by sys.path.
		wantCwd := dir
		if mode == modeEmbedded {
			wantCwd, _ = os.Getwd()
		}
		if env["cwd"] != wantCwd {
			t.Errorf("cwd = %v, want %s", env["cwd"], wantCwd)
		}
	})
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// unsized hides a reader's length so that net/http sends it chunked.
type unsized struct{ io.Reader }

func TestRequestBodies(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		s := startSite(t, Options{Mode: mode, App: "testapp:application"}, nil)
		big := bytes.Repeat([]byte("0123456789abcdef"), 80<<10) // 1.25 MB: streamed
		tests := []struct {
			name    string
			body    []byte
			chunked bool
		}{
			{"empty", nil, false},
			{"small with Content-Length", []byte("hello=world"), false},
			{"exactly the inline limit", bytes.Repeat([]byte("a"), inlineBody), false},
			{"large with Content-Length is streamed", big, false},
			{"small chunked", []byte("chunky"), true},
			{"large chunked is streamed to EOF", big, true},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var r io.Reader = bytes.NewReader(tc.body)
				if tc.chunked {
					r = unsized{r}
				}
				resp, err := http.Post(s.srv.URL+"/echo", "application/octet-stream", r)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := fmt.Sprintf("%d %s", len(tc.body), sum(tc.body))
				if resp.StatusCode != 200 || string(b) != want {
					t.Errorf("got %d %q, want 200 %q; log:\n%s", resp.StatusCode, b, want, s.logs)
				}
			})
		}
		t.Run("readline and readlines", func(t *testing.T) {
			for _, body := range []string{"line one\nline two\nthree\nfour", strings.Repeat("x", 100<<10) + "\nend\n"} {
				resp, err := http.Post(s.srv.URL+"/lines", "text/plain", unsized{strings.NewReader(body)})
				if err != nil {
					t.Fatal(err)
				}
				var got []any
				json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
				lines := strings.SplitAfter(body, "\n")
				rest := strings.SplitAfter(lines[1][3:]+strings.Join(lines[2:], ""), "\n")
				if rest[len(rest)-1] == "" {
					rest = rest[:len(rest)-1]
				}
				var wantRest []any
				for _, l := range rest {
					wantRest = append(wantRest, l)
				}
				want := []any{lines[0], lines[1][:3], wantRest}
				if mustJSON(got) != mustJSON(want) {
					t.Errorf("got %.200s, want %.200s", mustJSON(got), mustJSON(want))
				}
			}
		})
	})
}

func TestBodyTooLarge(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		limit := func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Body = http.MaxBytesReader(w, r.Body, 1000)
				h.ServeHTTP(w, r)
			})
		}
		s := startSite(t, Options{Mode: mode, App: "testapp:application"}, limit)
		for _, chunked := range []bool{false, true} {
			var r io.Reader = bytes.NewReader(make([]byte, 5000))
			if chunked {
				r = unsized{r}
			}
			resp, err := http.Post(s.srv.URL+"/echo", "application/octet-stream", r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("chunked=%v: status %d, want 413", chunked, resp.StatusCode)
			}
		}
	})
}

func TestResponses(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		s := startSite(t, Options{Mode: mode, App: "testapp:application"}, nil)
		raw := startSite(t, Options{Mode: mode, App: "testapp:raw", Processes: 1, Threads: 2}, nil)
		tests := []struct {
			name     string
			site     *site
			path     string
			status   int
			body     string
			header   http.Header
			log      string
			noHeader []string
		}{
			{name: "write callable then iterable", site: s, path: "/write", status: 200, body: "written then returned"},
			{name: "204 with no headers gets no sniffed Content-Type", site: s, path: "/empty", status: 204,
				noHeader: []string{"Content-Type"}},
			{name: "repeated headers kept", site: s, path: "/redirect", status: 302,
				header: http.Header{"Location": {"/elsewhere"}, "Set-Cookie": {"a=1", "b=2"}}},
			{name: "exc_info before the head replaces it", site: s, path: "/excinfo", status: 500, body: "custom error page"},
			{name: "unhandled exception: plain 500 and traceback in the log", site: s, path: "/fail", status: 500,
				body: "500 Internal Server Error\n", log: "RuntimeError: unhandled in the app"},
			{name: "hop-by-hop header rejected", site: raw, path: "/header?name=Connection&value=close", status: 500,
				log: "hop-by-hop header Connection"},
			{name: "Transfer-Encoding rejected", site: raw, path: "/header?name=Transfer-Encoding&value=chunked", status: 500,
				log: "hop-by-hop"},
			{name: "Proxy-Connection rejected", site: raw, path: "/header?name=Proxy-Connection&value=close", status: 500,
				log: "hop-by-hop header Proxy-Connection"},
			{name: "Proxy-Authenticate rejected", site: raw, path: "/header?name=Proxy-Authenticate&value=Basic", status: 500,
				log: "hop-by-hop header Proxy-Authenticate"},
			{name: "Trailers is no field and passes", site: raw, path: "/header?name=Trailers&value=x", status: 200, body: "bad",
				header: http.Header{"Trailers": {"x"}}},
			{name: "header injection rejected", site: raw, path: "/header?name=X-A&value=" + url.QueryEscape("x\r\nSet-Cookie: evil=1"),
				status: 500, log: "invalid value for header X-A", noHeader: []string{"Set-Cookie", "X-A"}},
			{name: "invalid header name rejected", site: raw, path: "/header?name=" + url.QueryEscape("Bad Name"), status: 500,
				log: "invalid header name"},
			{name: "bytes headers rejected", site: raw, path: "/bytes-header", status: 500, log: "name and value must be str"},
			{name: "status without reason rejected", site: raw, path: "/status?s=200", status: 500, log: "invalid status"},
			{name: "status with a tab rejected", site: raw, path: "/status?s=" + url.QueryEscape("200\tOK"), status: 500, log: "invalid status"},
			{name: "informational status rejected", site: raw, path: "/status?s=" + url.QueryEscape("101 Switching Protocols"), status: 500,
				log: "not a final response status"},
			{name: "status with a control byte rejected", site: raw, path: "/status?s=" + url.QueryEscape("200 O\x01K"), status: 500,
				log: "invalid status"},
			{name: "custom status", site: raw, path: "/status?s=" + url.QueryEscape("418 I'm a teapot"), status: 418, body: "status"},
			{name: "wsgi.errors goes to the log", site: s, path: "/errors", status: 200, body: "logged", log: "app wrote to wsgi.errors"},
			{name: "large single chunk", site: s, path: "/big?n=3000000", status: 200, body: strings.Repeat("x", 3000000)},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := tc.site.get(t, tc.path)
				if resp.StatusCode != tc.status {
					t.Errorf("status %d, want %d; body %.200q", resp.StatusCode, tc.status, body)
				}
				if tc.body != "" && body != tc.body {
					t.Errorf("body %.200q, want %.200q", body, tc.body)
				}
				for k, v := range tc.header {
					if got := resp.Header[k]; mustJSON(got) != mustJSON(v) {
						t.Errorf("header %s = %q, want %q", k, got, v)
					}
				}
				for _, k := range tc.noHeader {
					if v, ok := resp.Header[k]; ok {
						t.Errorf("header %s = %q, want none", k, v)
					}
				}
				if tc.log != "" {
					peertest.WaitFor(t, 20*time.Second, "log line "+tc.log, func() bool { return strings.Contains(tc.site.logs.String(), tc.log) })
				}
			})
		}
		if n := strings.Count(s.logs.String(), "Traceback"); n == 0 {
			t.Error("no traceback logged for the unhandled exception")
		}
	})
}

func TestErrorsAfterHeadAbortTheResponse(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		s := startSite(t, Options{Mode: mode, App: "testapp:application"}, nil)
		marker := filepath.Join(t.TempDir(), "closed")
		for _, path := range []string{"/excinfo-late", "/fail-iter?marker=" + url.QueryEscape(marker)} {
			// The head may or may not have left before the failure: either way the client
			// must see a broken response, never a complete one.
			resp, err := http.Get(s.srv.URL + path)
			if err != nil {
				continue
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Errorf("%s: read %q completely; want the response cut short", path, b)
			}
		}
		peertest.WaitFor(t, 20*time.Second, "close() after a failed iteration", func() bool { _, err := os.Stat(marker); return err == nil })
		// The worker survived and still serves.
		if resp, body := s.get(t, "/write"); resp.StatusCode != 200 || body != "written then returned" {
			t.Errorf("after aborted responses: %d %q", resp.StatusCode, body)
		}
	})
}

func TestStreamingIsNotBuffered(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		s := startSite(t, Options{Mode: mode, App: "testapp:application"}, nil)
		wait := filepath.Join(t.TempDir(), "go-on")
		resp, err := http.Get(s.srv.URL + "/stream?wait=" + url.QueryEscape(wait))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		first, err := br.ReadString('\n')
		if err != nil || first != "first\n" {
			t.Fatalf("first chunk %q, %v", first, err)
		}
		// Only now may the application go on: the first chunk came while it was running.
		os.WriteFile(wait, nil, 0o644)
		rest, _ := io.ReadAll(br)
		if string(rest) != "second\n" {
			t.Errorf("rest %q", rest)
		}
	})
}

func TestCloseAlwaysCalled(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		s := startSite(t, Options{Mode: mode, App: "testapp:application"}, nil)
		dir := t.TempDir()
		t.Run("normal completion", func(t *testing.T) {
			marker := filepath.Join(dir, "normal")
			_, body := s.get(t, "/close?marker="+url.QueryEscape(marker))
			if body != "one\ntwo\n" {
				t.Errorf("body %q", body)
			}
			peertest.WaitFor(t, 20*time.Second, "close()", func() bool { _, err := os.Stat(marker); return err == nil })
		})
		t.Run("a body in memory, sent in one piece", func(t *testing.T) {
			raw := startSite(t, Options{Mode: mode, App: "testapp:raw", Processes: 1}, nil)
			marker := filepath.Join(dir, "in-memory")
			_, body := raw.get(t, "/close-in-memory?marker="+url.QueryEscape(marker))
			if body != "one\ntwo\n" {
				t.Errorf("body %q", body)
			}
			peertest.WaitFor(t, 20*time.Second, "close()", func() bool { _, err := os.Stat(marker); return err == nil })
		})
		t.Run("client disconnects from an endless stream", func(t *testing.T) {
			marker := filepath.Join(dir, "disconnect")
			resp, err := http.Get(s.srv.URL + "/close?forever=1&marker=" + url.QueryEscape(marker))
			if err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(resp.Body)
			if line, _ := br.ReadString('\n'); line != "one\n" {
				t.Fatalf("first line %q", line)
			}
			resp.Body.Close()
			peertest.WaitFor(t, 20*time.Second, "close() after the client left", func() bool { _, err := os.Stat(marker); return err == nil })
		})
	})
}

func TestFileWrapperSendsTheFile(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		s := startSite(t, Options{Mode: mode, App: "testapp:raw"}, nil)
		data := make([]byte, 300<<10)
		for i := range data {
			data[i] = byte(i * 7)
		}
		name := filepath.Join(t.TempDir(), "blob.bin")
		os.WriteFile(name, data, 0o644)
		for _, skip := range []int{0, 12345} {
			resp, body := s.get(t, "/file?name="+url.QueryEscape(name)+"&skip="+strconv.Itoa(skip))
			if resp.StatusCode != 200 || body != string(data[skip:]) {
				t.Errorf("skip %d: status %d, %d bytes, want %d", skip, resp.StatusCode, len(body), len(data)-skip)
			}
		}
		// Through the validator the wrapper is hidden and the file is iterated instead.
		v := startSite(t, Options{Mode: mode, App: "testapp:application", Processes: 1}, nil)
		if resp, body := v.get(t, "/file?name="+url.QueryEscape(name)); resp.StatusCode != 200 || body != string(data) {
			t.Errorf("validated file_wrapper: status %d, %d bytes", resp.StatusCode, len(body))
		}
	})
}

func TestCrashMidRequest(t *testing.T) {
	s := startSite(t, Options{App: "testapp:application", Processes: 2, Threads: 1}, nil)
	before := s.h.Workers()
	stop := load(s.srv.URL+"/pid", 3)
	resp, _ := s.get(t, "/crash")
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("crashing request: %d, want 502", resp.StatusCode)
	}
	peertest.WaitFor(t, 20*time.Second, "respawned worker", func() bool {
		ws := s.h.Workers()
		ready := 0
		for _, w := range ws {
			if w.State == supervise.StateReady {
				ready++
			}
		}
		return ready == 2 && (ws[0].Restarts+ws[1].Restarts) == 1
	})
	if _, n := stop(); n > 0 {
		t.Errorf("%d other requests failed while a worker crashed", n)
	}
	after := s.h.Workers()
	if after[0].PID == before[0].PID && after[1].PID == before[1].PID {
		t.Error("no worker was replaced")
	}
}

func TestTimeoutReplacesStuckWorker(t *testing.T) {
	s := startSite(t, Options{App: "testapp:application", Processes: 1, Threads: 2, Timeout: config.Duration(500 * time.Millisecond)}, nil)
	old := s.h.Workers()[0].PID
	resp, _ := s.get(t, "/sleep?s=60")
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("stuck request: %d, want 504", resp.StatusCode)
	}
	peertest.WaitFor(t, 20*time.Second, "stuck worker replaced", func() bool {
		ws := s.h.Workers()
		return len(ws) == 1 && ws[0].PID != old && ws[0].State == supervise.StateReady
	})
	if resp, _ := s.get(t, "/pid"); resp.StatusCode != 200 {
		t.Errorf("after replacement: %d", resp.StatusCode)
	}
}

func TestMaxRequestsRecycles(t *testing.T) {
	s := startSite(t, Options{App: "testapp:application", Processes: 1, Threads: 1, MaxRequests: 3}, nil)
	pids := map[string]bool{}
	peertest.WaitFor(t, 20*time.Second, "a recycled worker", func() bool {
		resp, body := s.get(t, "/pid")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d during recycling", resp.StatusCode)
		}
		pids[body] = true
		return len(pids) >= 3
	})
}

func TestReloadUnderLoadLosesNothing(t *testing.T) {
	s := startSite(t, Options{App: "testapp:application", Processes: 2, Threads: 2}, nil)
	old := map[int]bool{}
	for _, w := range s.h.Workers() {
		old[w.PID] = true
	}
	stop := load(s.srv.URL+"/pid?s=0.01", 6)
	for range 2 {
		if err := s.h.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if ok, failed := stop(); failed > 0 || ok == 0 {
		t.Errorf("%d requests failed, %d succeeded during reload", failed, ok)
	}
	peertest.WaitFor(t, 20*time.Second, "old workers gone", func() bool {
		for _, w := range s.h.Workers() {
			if old[w.PID] {
				return false
			}
		}
		return true
	})
}

func TestShutdownFinishesInflight(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		python := peertest.Python(t)
		h, err := New(context.Background(), Options{Mode: mode, App: "testapp:application", Python: python, Chdir: appsDir(t)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		defer srv.Close()
		wait := filepath.Join(t.TempDir(), "go-on")
		resp, err := http.Get(srv.URL + "/stream?wait=" + url.QueryEscape(wait))
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		br.ReadString('\n')
		done := make(chan error, 1)
		go func() { done <- h.Shutdown(context.Background()) }()
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned (%v) with a request in flight", err)
		case <-time.After(200 * time.Millisecond):
		}
		os.WriteFile(wait, nil, 0o644)
		rest, err := io.ReadAll(br)
		if err != nil || string(rest) != "second\n" {
			t.Errorf("in-flight response during shutdown: %q, %v", rest, err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if ws := h.Workers(); len(ws) != 0 {
			t.Errorf("workers left: %+v", ws)
		}
		if _, err := os.Stat(h.dir); mode == modeDaemon && !os.IsNotExist(err) {
			t.Errorf("socket directory %s left behind", h.dir)
		}
	})
}

func TestStartupErrors(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		python := peertest.Python(t)
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "needs.py"), []byte("import gantry_no_such_dependency\napplication = None\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "notcallable.py"), []byte("application = 42\n"), 0o644)
		tests := []struct {
			name string
			opts Options
			want []string
		}{
			{"module not under chdir", Options{App: "mysite.wsgi:application"},
				[]string{"ModuleNotFoundError: No module named 'mysite'", "hint: chdir"}},
			{"dependency missing: wrong python or venv", Options{App: "needs:application"},
				[]string{"No module named 'gantry_no_such_dependency'", "right python", "virtualenv"}},
			{"not a WSGI callable", Options{App: "notcallable"}, []string{"not a WSGI callable"}},
			{"python not found", Options{App: "x:app", Python: "/nonexistent/python3"}, []string{"python \"/nonexistent/python3\" not found"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				opts := tc.opts
				opts.Chdir = dir
				if opts.Python == "" {
					opts.Python = python
				}
				start := time.Now()
				h, err := New(context.Background(), opts, nil)
				if err == nil {
					h.Shutdown(context.Background())
					t.Fatal("New succeeded")
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, err)
					}
				}
				if n := strings.Count(err.Error(), "Traceback (most recent call last)"); n > 1 {
					t.Errorf("traceback appears %d times", n)
				}
				if time.Since(start) > 30*time.Second {
					t.Error("New kept retrying a startup error")
				}
			})
		}
	})
}

func TestAutoReload(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		dir := t.TempDir()
		app := filepath.Join(dir, "live.py")
		write := func(v string, when time.Time) {
			src := fmt.Sprintf("def application(e, sr):\n    sr('200 OK', [('Content-Type', 'text/plain')])\n    return [b%q]\n", v)
			os.WriteFile(app, []byte(src), 0o644)
			os.Chtimes(app, when, when)
		}
		write("v1", time.Now().Add(-time.Hour))
		s := startSite(t, Options{Mode: mode, App: "live:application", Chdir: dir, Reload: "auto", Processes: 1}, nil)
		if _, body := s.get(t, "/"); body != "v1" {
			t.Fatalf("body %q", body)
		}
		// A broken edit keeps the old workers serving.
		os.WriteFile(app, []byte("def application(:\n"), 0o644)
		peertest.WaitFor(t, 20*time.Second, "reload failure logged", func() bool { return strings.Contains(s.logs.String(), "SyntaxError") })
		if resp, body := s.get(t, "/"); resp.StatusCode != 200 || body != "v1" {
			t.Errorf("after a broken edit: %d %q, want the old code serving", resp.StatusCode, body)
		}
		write("v2", time.Now())
		peertest.WaitFor(t, 20*time.Second, "new code served", func() bool { _, body := s.get(t, "/"); return body == "v2" })
	})
}

func TestWorkersSnapshot(t *testing.T) {
	s := startSite(t, Options{App: "testapp:application", Processes: 3, Threads: 1}, nil)
	for range 6 {
		s.get(t, "/pid")
	}
	peertest.WaitFor(t, 20*time.Second, "request counts", func() bool {
		var total uint64
		for _, w := range s.h.Workers() {
			total += w.Requests
		}
		return total == 6
	})
	ws := s.h.Workers()
	for _, w := range ws {
		if w.State != supervise.StateReady || w.RSSKB <= 0 || w.PID <= 0 {
			t.Errorf("worker %+v", w)
		}
	}
	if len(ws) != 3 {
		t.Errorf("%d workers, want 3", len(ws))
	}
}

// load sends GET url from clients goroutines, one request after another, until
// the returned stop is called; stop reports the requests that got a 200 and those
// that did not.
func load(url string, clients int) (stop func() (ok, failed int32)) {
	var okN, failedN atomic.Int32
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				resp, err := http.Get(url)
				if err != nil || resp.StatusCode != 200 {
					failedN.Add(1)
				} else {
					okN.Add(1)
				}
				if resp != nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	return func() (int32, int32) {
		close(done)
		wg.Wait()
		return okN.Load(), failedN.Load()
	}
}

// TestClientGoneBeforeDialKeepsWorker: a client that leaves before its request
// reaches a worker (the dial sees a cancelled context) is no fault of the
// worker, which must not be killed and replaced for it: a client could
// otherwise churn the pool by hanging up at once.
func TestClientGoneBeforeDialKeepsWorker(t *testing.T) {
	s := startSite(t, Options{App: "testapp:application", Processes: 1, Threads: 1}, nil)
	old := s.h.Workers()[0].PID
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("GET", "/pid", nil).WithContext(ctx)
	s.h.ServeHTTP(httptest.NewRecorder(), r)
	if ws := s.h.Workers(); len(ws) != 1 || ws[0].PID != old || ws[0].State != supervise.StateReady {
		t.Errorf("workers after a client left before the dial: %+v, want pid %d still ready", ws, old)
	}
	if resp, body := s.get(t, "/pid"); resp.StatusCode != 200 || body != strconv.Itoa(old) {
		t.Errorf("next request: %d %q, want 200 from pid %d", resp.StatusCode, body, old)
	}
}
