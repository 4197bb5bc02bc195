package server

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"gantry/internal/peertest"
)

// TestProxyClientGoneNotLogged200 has a client leave while the upstream is still
// working on its request: the proxy route must not let net/http answer (and log)
// an empty 200 that nobody sent; the access log says aborted=client.
func TestProxyClientGoneNotLogged200(t *testing.T) {
	var started atomic.Bool
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		started.Store(true)
		<-r.Context().Done() // answers only once gantry gave up on it
		io.WriteString(w, "upstream answered")
	}))
	t.Cleanup(upstream.Close)
	logFile := filepath.Join(t.TempDir(), "access.log")
	_, base, _ := startServer(t, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=%q\n[admin]\nlisten=\"off\"\n"+
		"[[site]]\n  [[site.route]]\n  path=\"/\"\n  proxy=%q\n", logFile, upstream.URL))
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody")
	// The upstream has the whole request and is slow to answer; the client
	// leaves meanwhile.
	peertest.WaitFor(t, 0, "the upstream to get the request", func() bool { return started.Load() })
	c.Close()
	var line string
	peertest.WaitFor(t, 0, "the access log line", func() bool {
		b, _ := os.ReadFile(logFile)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "POST /upload ") {
				line = l
			}
		}
		return line != ""
	})
	if strings.Contains(line, `" 200 `) || !strings.Contains(line, "aborted=client") {
		t.Errorf("access log line %q: want it logged as the client's abort, not a 200", line)
	}
}
