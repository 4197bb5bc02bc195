package wsgi

import (
	"gantry/internal/config"

	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// The worker serves fast requests on one thread at a time and hands the others work
// only when a request holds its thread (worker.py, Worker). A process must still run
// THREADS blocked requests at once, also after it sat idle long enough for the
// watchdog that hands work on to park.
func TestThreadsRunBlockedRequestsAtOnce(t *testing.T) {
	const threads = 3
	s := startSite(t, Options{App: "testapp:application", Processes: 1, Threads: threads, Timeout: config.Duration(10 * time.Second)}, nil)
	dir := t.TempDir()
	n := 0
	// hold starts a request that keeps its thread until release is called.
	hold := func(t *testing.T) (release func()) {
		t.Helper()
		n++
		wait := filepath.Join(dir, strconv.Itoa(n))
		resp, err := http.Get(s.srv.URL + "/stream?wait=" + url.QueryEscape(wait))
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		// The first line comes while the application runs, waiting for the file.
		if line, err := br.ReadString('\n'); line != "first\n" {
			resp.Body.Close()
			t.Fatalf("held request %d: first line %q, %v", n, line, err)
		}
		return func() {
			os.WriteFile(wait, nil, 0o644)
			rest, _ := io.ReadAll(br)
			resp.Body.Close()
			if string(rest) != "second\n" {
				t.Errorf("held request: rest %q", rest)
			}
		}
	}
	tests := []struct {
		name string
		idle time.Duration // quiet time before the requests come
	}{
		{name: "busy worker"},
		// Over the watchdog's park_after ticks (1 s): it must wake for the next request.
		{name: "after an idle spell", idle: 1500 * time.Millisecond},
	}
	pid := ""
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			time.Sleep(tc.idle)
			// threads-1 requests hold their threads; the last thread still answers.
			var releases []func()
			for range threads - 1 {
				releases = append(releases, hold(t))
			}
			defer func() {
				for _, release := range releases {
					release()
				}
			}()
			resp, body := s.get(t, "/pid")
			if resp.StatusCode != 200 {
				t.Fatalf("with %d requests held: status %d", threads-1, resp.StatusCode)
			}
			if pid != "" && body != pid {
				t.Fatalf("served by pid %s, want the one worker %s", body, pid)
			}
			pid = body
		})
	}
}

// Out of descriptors, accept fails with EMFILE while the listener stays readable:
// both of the worker's accept paths (epoll, and one thread per connection where
// there is no epoll) must sleep before they retry, not spin a core.
// testdata/emfile.py runs them at a real RLIMIT_NOFILE with time.sleep recorded.
func TestWorkerSleepsOnEMFILE(t *testing.T) {
	python := peertest.Python(t)
	for _, mode := range []string{"epoll", "blocking"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, python, "testdata/emfile.py", "worker.py", mode).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "slept 1" {
				t.Errorf("%v: %s", err, out)
			}
		})
	}
}
