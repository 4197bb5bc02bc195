package http1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestGuardKeepsHeaderTimeoutOnKeepAlive: a client that sends one request and
// then dribbles the next head must be cut at ReadHeaderTimeout, as on its first
// request. The guard holds a head's bytes until the head is complete, so
// net/http's wait for the next request (under IdleTimeout) only returns with the
// whole head, and ReadHeaderTimeout never starts: a slowloris head got the idle
// timeout (120s by default) instead of the header timeout (10s).
func TestGuardKeepsHeaderTimeoutOnKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: &splitRecorder{}, ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: time.Minute}
	go ServeGuarded(hs, ln, nil)
	t.Cleanup(func() { hs.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Far below IdleTimeout, far above ReadHeaderTimeout.
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	io.WriteString(c, "GET /b HTTP/1.1\r\nHo")
	got, err := io.ReadAll(br)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("an incomplete second head held the connection past ReadHeaderTimeout (read %q)", got)
	}
}

// TestGuardIgnoresEmptyLineBeforeRequestLine: RFC 9112 §2.2 asks a server to
// ignore at least one empty line before a request line, and net/http does after
// a POST (old clients send a CRLF after the body); the guard refused the next
// request with 400 and closed the connection.
func TestGuardIgnoresEmptyLineBeforeRequestLine(t *testing.T) {
	addr, rec := startSplit(t, 0, false)
	answers := splitConverse(t, addr, []string{
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx\r\n",
		"GET /b HTTP/1.1\r\nHost: a\r\n\r\n",
	}, false)
	if want := "200 OK, 200 OK"; answers != want {
		t.Errorf("answers %q, want %q; net/http got\n%s", answers, want, rec.take())
	}
}
