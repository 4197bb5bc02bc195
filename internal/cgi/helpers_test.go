package cgi

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// compiled holds the C test programs, built once per test binary with gcc.
var (
	compileOnce sync.Once
	compiledDir string
	compileErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if compiledDir != "" {
		os.RemoveAll(compiledDir)
	}
	os.Exit(code)
}

func compilePrograms(t testing.TB) string {
	t.Helper()
	gcc := peertest.Binary(t, "gcc", "cc")
	compileOnce.Do(func() {
		compiledDir, compileErr = os.MkdirTemp("", "gantry-cgi-bin-")
		if compileErr != nil {
			return
		}
		for _, name := range []string{"envc", "hello"} {
			src := filepath.Join("testdata", "src", name+".c")
			out, err := exec.Command(gcc, "-O2", "-o", filepath.Join(compiledDir, name), src).CombinedOutput()
			if err != nil {
				compileErr = fmt.Errorf("gcc %s: %v\n%s", src, err, out)
				return
			}
		}
	})
	if compileErr != nil {
		t.Fatal(compileErr)
	}
	return compiledDir
}

// scriptDir makes a fresh script directory: testdata/cgi-bin plus the compiled C
// programs, inside a temp dir that also serves as the document root's parent.
func scriptDir(t testing.TB) string {
	t.Helper()
	bin := compilePrograms(t)
	dir := filepath.Join(t.TempDir(), "cgi-bin")
	if err := os.CopyFS(dir, os.DirFS("testdata/cgi-bin")); err != nil {
		t.Fatal(err)
	}
	// CopyFS does not keep modes; restore them from the fixtures.
	filepath.WalkDir("testdata/cgi-bin", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, _ := d.Info()
		rel, _ := filepath.Rel("testdata/cgi-bin", p)
		return os.Chmod(filepath.Join(dir, rel), fi.Mode().Perm())
	})
	for _, name := range []string{"envc", "hello"} {
		b, err := os.ReadFile(filepath.Join(bin, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type fixture struct {
	h    *Handler
	srv  *httptest.Server
	dir  string // the script directory
	root string // the document root
	logs *peertest.LogBuffer
}

type setupOpts struct {
	opts  func(*Options)
	wrap  func(http.Handler) http.Handler
	tls   bool
	http2 bool
}

func newFixture(t *testing.T, so setupOpts) *fixture {
	t.Helper()
	dir := scriptDir(t)
	root := filepath.Join(filepath.Dir(dir), "www")
	os.Mkdir(root, 0o755)
	o := Options{Path: dir, Route: "/cgi-bin/", DocumentRoot: root, ServerSoftware: "gantry-test"}
	if so.opts != nil {
		so.opts(&o)
	}
	logs := &peertest.LogBuffer{}
	h, err := New(o, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	h.killGrace = 200 * time.Millisecond
	var handler http.Handler = h
	if so.wrap != nil {
		handler = so.wrap(h)
	}
	srv := httptest.NewUnstartedServer(handler)
	srv.Config.ErrorLog = nil
	srv.EnableHTTP2 = so.http2
	if so.tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	srv.Client().Timeout = 30 * time.Second // a hung script fails the test instead of stalling it
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &fixture{h: h, srv: srv, dir: dir, root: root, logs: logs}
}

func (f *fixture) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	return f.do(t, mustRequest(t, "GET", f.srv.URL+path, nil))
}

func (f *fixture) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	client := f.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v (got %q)", req.Method, req.URL, err, b)
	}
	return resp, string(b)
}

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// raw sends a request exactly as written, for paths Go's client would clean or
// refuse, and returns the response status and body.
func (f *fixture) raw(t *testing.T, request string) (int, http.Header, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", f.srv.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", request, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// parseEnv reads the "ENV NAME=value" lines the env scripts print.
func parseEnv(body string) map[string]string {
	env := map[string]string{}
	for line := range strings.SplitSeq(body, "\n") {
		if kv, ok := strings.CutPrefix(line, "ENV "); ok {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	return env
}

// waitFile polls until path exists and returns its contents.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	var s string
	peertest.WaitFor(t, 10*time.Second, path+" to appear", func() bool {
		b, err := os.ReadFile(path)
		s = strings.TrimSpace(string(b))
		return err == nil && len(b) > 0
	})
	return s
}

// processGone reports whether pid no longer exists or is a zombie that is not ours
// to reap (a grandchild re-parented to init).
func processGone(pid int, allowZombie bool) bool {
	if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
		return true
	}
	if !allowZombie {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(fields) > 0 && fields[0] == "Z"
}

func waitGone(t *testing.T, pid int, allowZombie bool) {
	t.Helper()
	peertest.WaitFor(t, 10*time.Second, fmt.Sprintf("process %d to be gone", pid), func() bool { return processGone(pid, allowZombie) })
}

func mkfifo(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// release writes a line to the FIFO a script is blocked on.
func release(t *testing.T, fifo string) {
	t.Helper()
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("go\n")
	f.Close()
}
