package fastcgi

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// What the fake backend does with a request once it has read all of it.
type backendAct int

const (
	answer          backendAct = iota // answer and keep the connection
	answerThenClose                   // answer, then close the connection (idle close, restart)
	die                               // close the connection without answering (crash)
)

type seenRequest struct {
	conn         int
	method, body string
}

// fakeBackend is a FastCGI server that records every request it received in full
// and then acts as acts says, request by request: the one way to put a failure at an
// exact point of the exchange.
type fakeBackend struct {
	addr   string
	acts   []backendAct
	closed chan struct{} // one value per answerThenClose, after the close

	mu    sync.Mutex
	seen  []seenRequest
	conns int
}

func newFakeBackend(t *testing.T, acts ...backendAct) *fakeBackend {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "fake.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBackend{addr: "unix:" + sock, acts: acts, closed: make(chan struct{}, len(acts))}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns++
			id := b.conns
			b.mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); b.serveConn(nc, id) }()
		}
	}()
	return b
}

func (b *fakeBackend) serveConn(nc net.Conn, id int) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(nc)
	hdr, content := make([]byte, headerLen), make([]byte, maxContent+255)
	for {
		var params, body []byte
		for stdinDone := false; !stdinDone; {
			h, c, err := decodeRecord(br, hdr, content, nil)
			if err != nil {
				return
			}
			switch h.Type {
			case typeParams:
				params = append(params, c...)
			case typeStdin:
				body = append(body, c...)
				stdinDone = len(c) == 0
			}
		}
		pairs, _ := parsePairs(params)
		method := ""
		for _, p := range pairs {
			if p[0] == "REQUEST_METHOD" {
				method = p[1]
			}
		}
		b.mu.Lock()
		i := len(b.seen)
		b.seen = append(b.seen, seenRequest{conn: id, method: method, body: string(body)})
		b.mu.Unlock()
		act := die
		if i < len(b.acts) {
			act = b.acts[i]
		}
		if act == die {
			return
		}
		out := appendStream(nil, typeStdout, requestID, []byte("Content-Type: text/plain\r\n\r\nok"))
		out = appendRecord(out, typeStdout, requestID, nil)
		out = appendRecord(out, typeEndRequest, requestID, make([]byte, 8))
		if _, err := nc.Write(out); err != nil {
			return
		}
		if act == answerThenClose {
			nc.Close()
			b.closed <- struct{}{}
			return
		}
	}
}

func (b *fakeBackend) requests() []seenRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]seenRequest(nil), b.seen...)
}

// TestRetryBoundary pins down when a request is sent again after its connection
// failed: only when that cannot run it twice.
func TestRetryBoundary(t *testing.T) {
	type req struct{ method, body string }
	get, post := req{"GET", ""}, req{"POST", "a=1"}
	tests := []struct {
		name   string
		acts   []backendAct
		reqs   []req
		status []int
		// seen is what the backend received, in order: method and connection number.
		seen []seenRequest
	}{
		{
			name: "GET on a kept connection the backend closed goes out again on a new one",
			acts: []backendAct{answerThenClose, answer}, reqs: []req{get, get}, status: []int{200, 200},
			seen: []seenRequest{{1, "GET", ""}, {2, "GET", ""}},
		},
		{
			name: "POST on a kept connection the backend closed is found stale before it is written",
			acts: []backendAct{answerThenClose, answer}, reqs: []req{get, post}, status: []int{200, 200},
			seen: []seenRequest{{1, "GET", ""}, {2, "POST", "a=1"}},
		},
		{
			name: "POST the backend took on a new connection and died on is not replayed",
			acts: []backendAct{die, answer}, reqs: []req{post}, status: []int{502},
			seen: []seenRequest{{1, "POST", "a=1"}},
		},
		{
			name: "POST the backend took on a kept connection and died on is not replayed",
			acts: []backendAct{answer, die, answer}, reqs: []req{get, post, get}, status: []int{200, 502, 200},
			seen: []seenRequest{{1, "GET", ""}, {1, "POST", "a=1"}, {2, "GET", ""}},
		},
		{
			name: "GET the backend took on a new connection and died on is not replayed",
			acts: []backendAct{die, answer}, reqs: []req{get}, status: []int{502},
			seen: []seenRequest{{1, "GET", ""}},
		},
		{
			// Indistinguishable from a connection closed while idle on TCP, where the
			// write succeeds and the loss shows on the read; a safe method may run twice.
			name: "GET that died unanswered on a kept connection is sent once more",
			acts: []backendAct{answer, die, answer}, reqs: []req{get, get}, status: []int{200, 200},
			seen: []seenRequest{{1, "GET", ""}, {1, "GET", ""}, {2, "GET", ""}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be := newFakeBackend(t, tc.acts...)
			srv, _, logs := serve(t, Options{Address: be.addr, Route: "*.php", MaxConns: 1, IdleTimeout: time.Minute}, nil)
			waited := 0 // closes waited for
			for i, r := range tc.reqs {
				hr, err := http.NewRequest(r.method, srv.URL+"/hello.php", strings.NewReader(r.body))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := http.DefaultClient.Do(hr)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status[i] {
					t.Fatalf("request %d (%s): status %d, want %d\n%s", i, r.method, resp.StatusCode, tc.status[i], logs)
				}
				// The next request must find the connection closed, not race the close.
				closes := 0
				for _, a := range tc.acts[:min(len(be.requests()), len(tc.acts))] {
					if a == answerThenClose {
						closes++
					}
				}
				for ; waited < closes; waited++ {
					<-be.closed
				}
			}
			got := be.requests()
			if len(got) != len(tc.seen) {
				t.Fatalf("backend received %+v, want %+v\n%s", got, tc.seen, logs)
			}
			for i := range got {
				if got[i] != tc.seen[i] {
					t.Errorf("backend request %d: %+v, want %+v", i, got[i], tc.seen[i])
				}
			}
		})
	}
}

// TestPOSTNotReplayedAfterPHPDies is the php-cgi case of the rule: a POST whose
// script ran and then killed its process must not run again on another process.
func TestPOSTNotReplayedAfterPHPDies(t *testing.T) {
	bin := peertest.Binary(t, "php-cgi", "php-cgi8.2")
	root := t.TempDir()
	ledger := filepath.Join(t.TempDir(), "ledger")
	script := `<?php
file_put_contents($_GET['ledger'], $_SERVER['REQUEST_METHOD'] . " " . file_get_contents('php://input') . "\n", FILE_APPEND);
posix_kill(getmypid(), 9);
`
	if err := os.WriteFile(filepath.Join(root, "once.php"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "hello.php"), []byte("<?php echo 'hello';\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, h, logs := serve(t, Options{Command: []string{bin}, Processes: 2, Route: "*.php", Root: root}, nil)

	// Keep-alive connections to both processes, as a busy server has them.
	for range 4 {
		if resp, body := get(t, srv.URL+"/hello.php"); resp.StatusCode != 200 {
			t.Fatalf("warm-up: %d %q", resp.StatusCode, body)
		}
	}
	resp, err := http.Post(srv.URL+"/once.php?ledger="+url.QueryEscape(ledger), "application/x-www-form-urlencoded", strings.NewReader("pay=1"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	b, err := os.ReadFile(ledger)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "POST pay=1\n" {
		t.Fatalf("the script ran %d times: %q\n%s", strings.Count(string(b), "\n"), b, logs)
	}
	// The supervisor replaces the process; the pool serves again.
	peertest.WaitFor(t, 15*time.Second, "both processes ready", func() bool {
		ready := 0
		for _, w := range h.Workers() {
			if w.State == "ready" {
				ready++
			}
		}
		return ready == 2
	})
	if resp, body := get(t, srv.URL+"/hello.php"); resp.StatusCode != 200 {
		t.Fatalf("after the crash: %d %q", resp.StatusCode, body)
	}
}
