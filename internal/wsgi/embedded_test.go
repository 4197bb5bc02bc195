//go:build python

package wsgi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/internal/config"
	"gantry/internal/peertest"
)

func init() { modes = append(modes, modeEmbedded) }

// Each way an app can break PEP 3333 gets a 500 (or, once the head is out, a cut
// response) and a log line naming the fault, and the thread serves on.
func TestEmbeddedFaults(t *testing.T) {
	s := startSite(t, Options{Mode: modeEmbedded, App: "testapp:raw", Threads: 2}, nil)
	tests := []struct {
		name   string
		path   string
		status int // 0: the head went out before the fault, the response must be cut
		log    string
	}{
		{"non-iterable result", "/noniter", 500, "TypeError: 'int' object is not iterable"},
		{"start_response twice without exc_info", "/twice", 500, "start_response() called a second time without exc_info"},
		{"write() after iteration started", "/write-late", 0, "write() called after the application returned its iterable"},
		{"huge response header", "/huge-header", 500, "response head of"},
		{"str in the body", "/str-body", 500, "expected a bytes-like object, str found"},
		{"sys.exit in the app", "/exit", 500, "SystemExit: 3"},
		// os._exit would end gantry itself, with every request in flight.
		{"os._exit in the app", "/crash", 500, "os._exit(1) would end gantry"},
		{"unhandled exception", "/fail", 500, "RuntimeError: unhandled in the app"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(s.srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tc.status == 0 {
				if rerr == nil {
					t.Errorf("read %q completely; want the response cut short", b)
				}
			} else if resp.StatusCode != tc.status || string(b) != "500 Internal Server Error\n" {
				t.Errorf("%d %.100q, want %d and the plain error page", resp.StatusCode, b, tc.status)
			}
			peertest.WaitFor(t, 20*time.Second, "log line "+tc.log, func() bool { return strings.Contains(s.logs.String(), tc.log) })
			if resp, body := s.get(t, "/pid"); resp.StatusCode != 200 || body != fmt.Sprint(os.Getpid()) {
				t.Errorf("after the fault: %d %q, want gantry's pid", resp.StatusCode, body)
			}
		})
	}
	if strings.Contains(s.logs.String(), "hhhhhhhhhh") {
		t.Error("the huge header's value was logged")
	}
}

// A request past its timeout gets 504; its thread stays busy (and shows so) until
// Python returns; with every thread stuck the next request gets 503 at once.
func TestEmbeddedTimeout(t *testing.T) {
	s := startSite(t, Options{Mode: modeEmbedded, App: "testapp:application", Threads: 2, Timeout: config.Duration(300 * time.Millisecond)}, nil)
	dir := t.TempDir()
	states := func() map[string]int {
		m := map[string]int{}
		for _, w := range s.h.Workers() {
			m[w.State]++
		}
		return m
	}
	for i := range 2 {
		mark := filepath.Join(dir, fmt.Sprint(i))
		resp, _ := s.get(t, "/sleep?s=4&mark="+url.QueryEscape(mark))
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("stuck request %d: %d, want 504", i, resp.StatusCode)
		}
		if _, err := os.Stat(mark); err != nil {
			t.Fatalf("request %d never reached the app", i)
		}
		if got := states()["stuck"]; got != i+1 {
			t.Errorf("after %d timeouts %d threads show stuck: %v", i+1, got, states())
		}
	}
	resp, _ := s.get(t, "/pid")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("with every thread stuck: %d, want 503 with Retry-After", resp.StatusCode)
	}
	for _, want := range []string{"request timed out; its Python thread stays busy", "every Python thread is still in a request that timed out"} {
		if !strings.Contains(s.logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	var errs uint64
	for _, w := range s.h.Workers() {
		errs += w.Errors
	}
	if errs != 2 {
		t.Errorf("%d errors counted, want the 2 timeouts", errs)
	}
	peertest.WaitFor(t, 20*time.Second, "threads free again", func() bool { return states()["ready"] == 2 })
	if resp, _ := s.get(t, "/pid"); resp.StatusCode != 200 {
		t.Errorf("after the app returned: %d", resp.StatusCode)
	}
}

// A client that leaves while the app is blocked does not hide the thread: once the
// timeout passes it shows stuck, and with every thread stuck the next request gets
// 503 at once instead of waiting a timeout for a thread.
func TestEmbeddedClientGoneThenStuck(t *testing.T) {
	s := startSite(t, Options{Mode: modeEmbedded, App: "testapp:application", Threads: 1, Timeout: config.Duration(300 * time.Millisecond)}, nil)
	mark := filepath.Join(t.TempDir(), "mark")
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.srv.URL+"/sleep?s=5&mark="+url.QueryEscape(mark), nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	peertest.WaitFor(t, 20*time.Second, "request in the app", func() bool { _, err := os.Stat(mark); return err == nil })
	cancel()
	<-errc
	peertest.WaitFor(t, 20*time.Second, "thread shown stuck", func() bool {
		ws := s.h.Workers()
		return len(ws) == 1 && ws[0].State == "stuck"
	})
	if !strings.Contains(s.logs.String(), "request timed out; its Python thread stays busy") {
		t.Error("no log line for the thread held past the timeout")
	}
	if resp, _ := s.get(t, "/pid"); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("with the only thread stuck: %d, want 503 with Retry-After", resp.StatusCode)
	}
	peertest.WaitFor(t, 20*time.Second, "thread free again", func() bool { return s.h.Workers()[0].State == "ready" })
}

// A request queued behind a slow one, which no thread takes before its timeout,
// gets 503 and is taken back: the app never sees it, even once the thread is free.
func TestEmbeddedQueuedTimesOut(t *testing.T) {
	s := startSite(t, Options{Mode: modeEmbedded, App: "testapp:application", Threads: 1, Timeout: config.Duration(300 * time.Millisecond)}, nil)
	dir := t.TempDir()
	slow, queued := filepath.Join(dir, "slow"), filepath.Join(dir, "queued")
	errc := make(chan error, 1)
	go func() {
		resp, err := http.Get(s.srv.URL + "/sleep?s=2&mark=" + url.QueryEscape(slow))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	peertest.WaitFor(t, 20*time.Second, "slow request in the app", func() bool { _, err := os.Stat(slow); return err == nil })
	resp, _ := s.get(t, "/sleep?s=0&mark="+url.QueryEscape(queued))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("queued past its timeout: %d, want 503 with Retry-After", resp.StatusCode)
	}
	<-errc
	peertest.WaitFor(t, 20*time.Second, "thread free again", func() bool { return s.h.Workers()[0].State == "ready" })
	if resp, body := s.get(t, "/pid"); resp.StatusCode != 200 {
		t.Errorf("after the slow request: %d %q", resp.StatusCode, body)
	}
	if _, err := os.Stat(queued); err == nil {
		t.Error("the request that timed out in the queue reached the app")
	}
}

// A child the app forks in the main interpreter and that returns into gantry exits
// there: it neither serves a response on the parent's thread nor hangs as a copy of
// gantry holding its listening sockets.
func TestEmbeddedForkMain(t *testing.T) {
	s := startSite(t, Options{Mode: modeEmbedded, App: "testapp:raw", Threads: 1, Interpreter: interpMain}, nil)
	for range 3 {
		if resp, body := s.get(t, "/fork"); resp.StatusCode != 200 || body != "child exited 0" {
			t.Fatalf("fork: %d %q, want the child to exit", resp.StatusCode, body)
		}
	}
	if resp, body := s.get(t, "/pid"); resp.StatusCode != 200 || body != fmt.Sprint(os.Getpid()) {
		t.Errorf("after the forks: %d %q", resp.StatusCode, body)
	}
}

// In a sub-interpreter os.fork raises, as Python 3.12 does there: Python 3.11 would
// abort the child (a copy of gantry) with a fatal error, and a core dump where
// enabled.
func TestEmbeddedForkSub(t *testing.T) {
	s := startSite(t, Options{Mode: modeEmbedded, App: "testapp:raw", Threads: 1}, nil)
	if resp, body := s.get(t, "/fork"); resp.StatusCode != 500 {
		t.Errorf("fork in a sub-interpreter: %d %q, want 500", resp.StatusCode, body)
	}
	if want := `os.fork() is not supported in a sub-interpreter`; !strings.Contains(s.logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, s.logs.String())
	}
	if resp, body := s.get(t, "/pid"); resp.StatusCode != 200 || body != fmt.Sprint(os.Getpid()) {
		t.Errorf("after the fork: %d %q", resp.StatusCode, body)
	}
}

// A reload frees what the old code built: the shim freezes the import's objects out
// of the collector's sight, and the old interpreter must hand them back before it
// ends, or every reload keeps the whole previous app (its cycles) in memory.
func TestEmbeddedReloadFreesOldCode(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(t.TempDir(), "freed")
	os.WriteFile(filepath.Join(dir, "cyclic.py"), []byte(`import os

class Sentinel:
    """Freed only by the cycle collector: it refers to itself."""

    def __init__(self, path):
        self.path, self.me = path, self

    def __del__(self, _open=os.open, _close=os.close, _flags=os.O_CREAT | os.O_WRONLY):
        _close(_open(self.path, _flags))

_sentinel = Sentinel(os.environ["GANTRY_TEST_MARK"])

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
`), 0o644)
	s := startSite(t, Options{Mode: modeEmbedded, App: "cyclic:application", Chdir: dir, Threads: 1,
		Env: map[string]string{"GANTRY_TEST_MARK": mark}}, nil)
	if err := s.h.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	peertest.WaitFor(t, 20*time.Second, "old interpreter ended", func() bool {
		return strings.Contains(s.logs.String(), "old interpreter ended")
	})
	if _, err := os.Stat(mark); err != nil {
		t.Errorf("the old code's objects outlived its interpreter: %v", err)
	}
	if _, body := s.get(t, "/"); body != "ok" {
		t.Errorf("after reload: %q", body)
	}
}

// What the app prints goes to gantry's log even when it is not valid UTF-8 (a lone
// surrogate from surrogateescape): the app's print must not fail its request.
func TestEmbeddedPrintSurrogate(t *testing.T) {
	s := startSite(t, Options{Mode: modeEmbedded, App: "testapp:raw", Threads: 1}, nil)
	if resp, body := s.get(t, "/print-surrogate"); resp.StatusCode != 200 || body != "printed" {
		t.Errorf("print of a lone surrogate: %d %.200q, want 200", resp.StatusCode, body)
	}
	peertest.WaitFor(t, 20*time.Second, "the printed line in the log", func() bool {
		return strings.Contains(s.logs.String(), `msg="wsgi: app output" text="listing b\\udcffd.txt"`)
	})
}

// Each pool thread is one OS thread with its own thread state: threading.local
// keeps a value per thread, and no more threads run Python than the pool has.
func TestEmbeddedThreads(t *testing.T) {
	python := peertest.Python(t)
	const threads = 3
	s := startSite(t, Options{Mode: modeEmbedded, App: "testapp:application", Threads: threads, Python: python}, nil)
	type seen struct {
		Ident, Native, Local int
		Executable, Prefix   string
	}
	var mu sync.Mutex
	perThread := map[int][]int{} // native id -> the local counts it returned
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				resp, err := http.Get(s.srv.URL + "/thread")
				if err != nil {
					t.Error(err)
					return
				}
				var v seen
				err = json.NewDecoder(resp.Body).Decode(&v)
				resp.Body.Close()
				if err != nil {
					t.Error(err)
					return
				}
				if v.Executable != python {
					t.Errorf("sys.executable = %q, want %q", v.Executable, python)
				}
				mu.Lock()
				perThread[v.Native] = append(perThread[v.Native], v.Local)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(perThread) > threads {
		t.Errorf("requests ran on %d OS threads, want at most %d", len(perThread), threads)
	}
	total := 0
	for native, counts := range perThread {
		total += len(counts)
		// A thread's local counter goes 1, 2, 3...: each value once.
		have := map[int]bool{}
		for _, n := range counts {
			if have[n] || n < 1 || n > len(counts) {
				t.Errorf("thread %d: threading.local counts %v are not one per request", native, counts)
				break
			}
			have[n] = true
		}
	}
	if total != 200 {
		t.Errorf("%d requests answered, want 200", total)
	}
	// A thread streams the response out (through the validator's iterator) before
	// the app has returned and the thread is free.
	peertest.WaitFor(t, 20*time.Second, "every thread free", func() bool {
		for _, w := range s.h.Workers() {
			if w.State != "ready" {
				return false
			}
		}
		return true
	})
	ws := s.h.Workers()
	var reqs uint64
	for i, w := range ws {
		reqs += w.Requests
		if _, ok := perThread[w.PID]; !ok && w.Requests > 0 {
			t.Errorf("worker %d shows thread %d, which served no request", i, w.PID)
		}
	}
	if len(ws) != threads || reqs != 200 || ws[0].RSSKB <= 0 {
		t.Errorf("workers %+v: want %d threads, 200 requests, the process RSS", ws, threads)
	}
}

func writeLive(t *testing.T, dir, version string) {
	t.Helper()
	src := fmt.Sprintf(`import os, time
VERSION = %q

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["PATH_INFO"] == "/slow":
        wait = environ["QUERY_STRING"]
        def gen():
            yield b"started "
            while not os.path.exists(wait):
                time.sleep(0.01)
            yield VERSION.encode()
        return gen()
    return [VERSION.encode()]
`, version)
	name := filepath.Join(dir, "live.py")
	if err := os.WriteFile(name, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	// A later second than the last version's: Python trusts a cached .pyc whose
	// source has the same size and modification second.
	liveClock++
	when := time.Now().Add(time.Duration(liveClock) * time.Second)
	os.Chtimes(name, when, when)
}

var liveClock int

// A reload loads the new code in a fresh sub-interpreter: requests keep being
// answered throughout, one in flight finishes on the old code, and the old
// interpreter ends after it.
func TestEmbeddedReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	writeLive(t, dir, "v1")
	s := startSite(t, Options{Mode: modeEmbedded, App: "live:application", Chdir: dir, Threads: 3}, nil)
	wait := filepath.Join(t.TempDir(), "go-on")
	resp, err := http.Get(s.srv.URL + "/slow?" + wait)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if first, _ := br.ReadString(' '); first != "started " {
		t.Fatalf("in-flight request: %q", first)
	}
	stop := load(s.srv.URL+"/", 4)
	for _, v := range []string{"v2", "v3"} {
		writeLive(t, dir, v)
		if err := s.h.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if ok, failed := stop(); failed > 0 || ok == 0 {
		t.Errorf("%d requests failed, %d succeeded during reloads", failed, ok)
	}
	if _, body := s.get(t, "/"); body != "v3" {
		t.Errorf("after reload: %q, want v3", body)
	}
	os.WriteFile(wait, nil, 0o644)
	if rest, _ := io.ReadAll(br); string(rest) != "v1" {
		t.Errorf("in-flight request finished with %q, want the old code's v1", rest)
	}
	peertest.WaitFor(t, 20*time.Second, "both old interpreters ended", func() bool {
		return strings.Count(s.logs.String(), "old interpreter ended") == 2
	})
	// A reload whose import fails keeps the running code.
	os.WriteFile(filepath.Join(dir, "live.py"), []byte("def application(:\n"), 0o644)
	if err := s.h.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "SyntaxError") {
		t.Errorf("reload of broken code: %v, want the SyntaxError", err)
	}
	if _, body := s.get(t, "/"); body != "v3" {
		t.Errorf("after a failed reload: %q, want v3", body)
	}
}

// interpreter = "main" runs the app in the main interpreter; a reload keeps the
// code and says that new code needs a restart.
func TestEmbeddedMainInterpreter(t *testing.T) {
	dir := t.TempDir()
	writeLive(t, dir, "m1")
	s := startSite(t, Options{Mode: modeEmbedded, Interpreter: interpMain, App: "live:application", Chdir: dir, Threads: 2}, nil)
	if _, body := s.get(t, "/"); body != "m1" {
		t.Fatalf("body %q", body)
	}
	writeLive(t, dir, "m2")
	if err := s.h.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, body := s.get(t, "/"); body != "m1" {
		t.Errorf("after reload in the main interpreter: %q, want the loaded m1", body)
	}
	if !strings.Contains(s.logs.String(), "restart gantry to run new code") {
		t.Errorf("reload did not say a restart is needed:\n%s", s.logs)
	}
}

// A python of another version than the linked libpython is refused at start.
func TestEmbeddedVersionMismatch(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "python3.9")
	os.WriteFile(fake, []byte("#!/bin/sh\necho 3.9\n"), 0o755)
	h, err := New(context.Background(), Options{Mode: modeEmbedded, App: "testapp:application", Python: fake, Chdir: appsDir(t)}, nil)
	if err == nil {
		h.Shutdown(context.Background())
		t.Fatal("started with a python of another version")
	}
	want := fmt.Sprintf("is Python 3.9, but this gantry is linked with libpython %s", PythonLinked()[:strings.LastIndex(PythonLinked(), ".")])
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `mode = "daemon"`) {
		t.Errorf("error %q lacks %q and the way out", err, want)
	}
}

// A virtualenv's python selects the venv: its site-packages are importable and
// sys.prefix and sys.executable are the venv's.
func TestEmbeddedVirtualenv(t *testing.T) {
	python := peertest.Python(t)
	venv := filepath.Join(t.TempDir(), "venv")
	run(t, filepath.Dir(venv), nil, python, "-m", "venv", "--without-pip", venv)
	site := filepath.Join(venv, "lib", "python"+PythonLinked()[:strings.LastIndex(PythonLinked(), ".")], "site-packages")
	os.WriteFile(filepath.Join(site, "only_in_venv.py"), []byte("WHERE = 'venv'\n"), 0o644)
	app := t.TempDir()
	os.WriteFile(filepath.Join(app, "venvapp.py"), []byte(`import json, sys, only_in_venv
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps([only_in_venv.WHERE, sys.prefix, sys.executable], separators=(",", ":")).encode()]
`), 0o644)
	vpy := filepath.Join(venv, "bin", "python")
	s := startSite(t, Options{Mode: modeEmbedded, App: "venvapp:application", Chdir: app, Python: vpy, Threads: 1}, nil)
	_, body := s.get(t, "/")
	if want := mustJSON([]string{"venv", venv, vpy}); body != want {
		t.Errorf("got %s, want %s", body, want)
	}
}

// An app that leaves a thread running cannot have its interpreter ended (Python
// would abort the process): a reload and the shutdown leave it in memory, say so,
// and gantry serves on.
func TestEmbeddedAppThreadOutlivesReload(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "threaded.py"), []byte(`import threading, time
threading.Thread(target=lambda: time.sleep(3600), daemon=True).start()
threading.Thread(target=lambda: time.sleep(3600), daemon=False).start()

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"threaded"]
`), 0o644)
	s := startSite(t, Options{Mode: modeEmbedded, App: "threaded:application", Chdir: dir, Threads: 2}, nil)
	if err := s.h.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	peertest.WaitFor(t, 20*time.Second, "the old interpreter kept", func() bool {
		return strings.Contains(s.logs.String(), "old interpreter left in memory: threads the app started still run in it")
	})
	for range 4 {
		if resp, body := s.get(t, "/"); resp.StatusCode != 200 || body != "threaded" {
			t.Fatalf("after the reload: %d %q", resp.StatusCode, body)
		}
	}
}
