package http1

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// TestNoHeaderTimeoutSplitHead: with no ReadHeaderTimeout (zero means none, as
// in http.Server) a keep-alive connection's next head that arrives in two parts
// is read to its end, however long after ParkAfter its second part comes: the
// idle wait's ParkAfter deadline is not the head's.
func TestNoHeaderTimeoutSplitHead(t *testing.T) {
	h := &testHandler{body: []byte("hello")}
	s := &Server{Handler: h, Fallback: &http.Server{}, IdleTimeout: time.Minute, ParkAfter: 20 * time.Millisecond}
	addr := serveTest(t, s)
	a := dial(t, addr)
	io.WriteString(a, fastGet)
	readAnswer(t, a)
	io.WriteString(a, "GET /fast HTTP/1.1\r\n")
	// b goes idle after a did: once b is parked, a's ParkAfter has passed too.
	b := dial(t, addr)
	io.WriteString(b, fastGet)
	readAnswer(t, b)
	peertest.WaitFor(t, 0, "the later connection parked", func() bool { return s.Parked() == 1 })
	io.WriteString(a, "Host: x\r\n\r\n")
	if got := readAnswer(t, a); !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") {
		t.Fatalf("answer %q", got)
	}
}
