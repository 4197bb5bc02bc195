package http1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// cappedConn returns at most max bytes per Read, so that the guard sees the
// stream cut at every position whatever TCP does with the client's writes.
type cappedConn struct {
	net.Conn
	max int
}

func (c *cappedConn) Read(p []byte) (int, error) {
	if c.max > 0 && len(p) > c.max {
		p = p[:c.max]
	}
	return c.Conn.Read(p)
}

func (c *cappedConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

type cappedListener struct {
	net.Listener
	max int
}

func (l cappedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &cappedConn{Conn: c, max: l.max}, nil
}

// splitRecorder records what net/http handed the handler, body and trailer
// included, and answers refused heads as the server does.
type splitRecorder struct {
	mu   sync.Mutex
	reqs []string
}

func (h *splitRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var rec string
	if ref, ok := Refused(r); ok {
		rec = fmt.Sprintf("refused %d", ref.Status)
		w.Header().Set("Connection", "close")
		w.WriteHeader(ref.Status)
	} else if strings.HasPrefix(r.RequestURI, "/noread") {
		// net/http reads (or gives up on) the body itself after the handler.
		rec = fmt.Sprintf("%s %s unread", r.Method, r.RequestURI)
	} else {
		b, err := io.ReadAll(r.Body)
		rec = fmt.Sprintf("%s %s body=%q trailer=%v", r.Method, r.RequestURI, b, r.Trailer)
		if err != nil {
			rec += " body error"
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusBadRequest)
		}
	}
	h.mu.Lock()
	h.reqs = append(h.reqs, rec)
	h.mu.Unlock()
}

func (h *splitRecorder) take() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := strings.Join(h.reqs, "\n")
	h.reqs = nil
	return s
}

// startSplit serves a recorder behind the guard, every connection read at most
// max bytes at a time (0: as much as there is).
func startSplit(t testing.TB, max int, fast bool) (string, *splitRecorder) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &splitRecorder{}
	hs := &http.Server{Handler: rec, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second}
	if fast {
		s := &Server{Handler: &splitFast{rec}, Fallback: hs, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second}
		go s.Serve(cappedListener{ln, max})
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.Shutdown(ctx)
		})
	} else {
		go ServeGuarded(hs, cappedListener{ln, max}, nil)
		t.Cleanup(func() { hs.Close() })
	}
	return ln.Addr().String(), rec
}

// splitFast answers GET /fast... on the fast path, recording it as net/http would.
type splitFast struct{ rec *splitRecorder }

func (f *splitFast) ServeFast(w *ResponseWriter, r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, "/fast") {
		return false
	}
	f.rec.mu.Lock()
	f.rec.reqs = append(f.rec.reqs, fmt.Sprintf("%s %s body=\"\" trailer=map[]", r.Method, r.RequestURI))
	f.rec.mu.Unlock()
	w.Header()["Content-Length"] = []string{"0"}
	w.WriteHeader(http.StatusOK)
	return true
}

// splitConverse sends the requests on one connection, all at once or (paced)
// each only once the previous one is answered, half-closes, and returns the
// statuses the client read.
func splitConverse(t testing.TB, addr string, reqs []string, paced bool) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	var got []string
	read := func() bool {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got = append(got, resp.Status)
		return true
	}
	if paced {
		for i, r := range reqs {
			if _, err := io.WriteString(c, r); err != nil || i < len(reqs)-1 && !read() {
				break
			}
		}
		c.(*net.TCPConn).CloseWrite()
	} else {
		go func() {
			io.WriteString(c, strings.Join(reqs, ""))
			c.(*net.TCPConn).CloseWrite()
		}()
	}
	for read() {
	}
	return strings.Join(got, ", ")
}

// splitStreams are conversations on one connection, one string per request.
var splitStreams = []struct {
	name string
	reqs []string
}{
	{"fast then handed off", []string{
		"GET /fast1 HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
		"GET /fast2 HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
	}},
	{"fast then refused", []string{
		"GET /fast1 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /fast2 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
	}},
	{"content-length bodies", []string{
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		"GET /c HTTP/1.1\r\nHost: a\r\n\r\n",
	}},
	{"chunked with extensions", []string{
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n",
		"GET /b HTTP/1.1\r\nHost: a\r\n\r\n",
	}},
	{"chunked with trailers", []string{
		"POST /a HTTP/1.1\r\nHost: a\r\nTrailer: X-T\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\nX-T: 1\r\nX-U: 22\r\n\r\n",
		"POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\nX-Long: " + strings.Repeat("v", 300) + "\r\n\r\n",
		"GET /c HTTP/1.1\r\nHost: a\r\n\r\n",
	}},
	{"long heads", []string{
		"GET /a HTTP/1.1\r\nHost: a\r\nX-A: " + strings.Repeat("a", 5000) + "\r\n\r\n",
		"POST /b HTTP/1.1\r\nHost: a\r\nX-B: " + strings.Repeat("b", 9000) + "\r\nContent-Length: 3\r\n\r\nabc",
		"GET /c HTTP/1.1\r\nHost: a\r\n\r\n",
	}},
	{"refused after a chunked body", []string{
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n",
		"GET /b HTTP/1.2\r\nHost: a\r\n\r\n",
		"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
	}},
	{"bad chunk after a good request", []string{
		"GET /a HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxyz\r\n0\r\n\r\n",
		"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
	}},
	{"bodies the handler does not read", []string{
		"POST /noread1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"POST /noread2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
		"POST /noread3 HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nxyz",
		"GET /d HTTP/1.1\r\nHost: a\r\n\r\n",
	}},
	{"expect 100-continue", []string{
		"POST /a HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nxyz",
		"POST /b HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n",
		"HEAD /c HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /d HTTP/1.1\r\nHost: a\r\n\r\n",
	}},
	{"incomplete head at end", []string{
		"GET /a HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /b HTTP/1.1\r\nHo",
	}},
}

// TestGuardFramesSplitStreamsAsWhole delivers each conversation with the guard
// reading at most 1, 2, 3 or 7 bytes at a time, all at once and paced (each
// request sent once the previous one is answered, so the guard meets the next head
// with an empty buffer): net/http must get the same requests and the client the
// same answers as when every read returns all there is. State the guard keeps
// from one message into the next (scan, remain, the buffer's offsets) shows up
// here as a different framing, a refusal or a dropped connection.
func TestGuardFramesSplitStreamsAsWhole(t *testing.T) {
	caps := []int{0, 1, 2, 3, 7, 0, 1, 2, 3, 7}
	addrs := make([]string, len(caps))
	recs := make([]*splitRecorder, len(caps))
	for i, max := range caps {
		addrs[i], recs[i] = startSplit(t, max, i >= len(caps)/2)
	}
	for _, tc := range splitStreams {
		wantAnswers := splitConverse(t, addrs[0], tc.reqs, false)
		want := recs[0].take()
		for _, paced := range []bool{false, true} {
			for i, max := range caps {
				t.Run(fmt.Sprintf("%s/paced=%v/fast=%v/max=%d", tc.name, paced, i >= len(caps)/2, max), func(t *testing.T) {
					answers := splitConverse(t, addrs[i], tc.reqs, paced)
					got := recs[i].take()
					if got != want {
						t.Errorf("net/http got\n%s\nwant (all at once)\n%s", got, want)
					}
					if answers != wantAnswers {
						t.Errorf("answers %q, want %q", answers, wantAnswers)
					}
				})
			}
		}
	}
}

// FuzzGuardSplit sends arbitrary bytes as one connection to a guard that reads
// them whole and to guards that read at most 1, 2, 3 and 7 bytes at a time: all
// must hand net/http the same requests and the client the same answers.
func FuzzGuardSplit(f *testing.F) {
	for _, tc := range splitStreams {
		f.Add(strings.Join(tc.reqs, "")) // each table conversation
	}
	f.Add("POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + strings.Repeat("y", 70000) + "\r\n\r\n") // trailer past the head limit
	f.Add("GET /a HTTP/1.1\r\nHost: a\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n")                                            // an empty line between requests
	caps := []int{0, 1, 2, 3, 7}
	addrs := make([]string, len(caps))
	recs := make([]*splitRecorder, len(caps))
	for i, max := range caps {
		addrs[i], recs[i] = startSplit(f, max, false)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		wantAnswers := splitConverse(t, addrs[0], []string{raw}, false)
		want := recs[0].take()
		for i := 1; i < len(caps); i++ {
			answers := splitConverse(t, addrs[i], []string{raw}, false)
			if got := recs[i].take(); got != want {
				t.Errorf("max=%d: net/http got\n%s\nwant (all at once)\n%s", caps[i], got, want)
			}
			if answers != wantAnswers {
				t.Errorf("max=%d: answers %q, want %q", caps[i], answers, wantAnswers)
			}
		}
	})
}
