package http1

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// TestSplitHeadAfterParkAfter: a keep-alive connection's next head that
// arrives in two parts is read to its end however long after ParkAfter its
// second part comes, within ReadHeaderTimeout or, with none (zero means none,
// as in http.Server), the idle timeout: the idle wait's ParkAfter deadline is
// not the head's. The first part comes alone after an idle wait, or pipelined
// behind the previous request.
func TestSplitHeadAfterParkAfter(t *testing.T) {
	for _, tc := range []struct {
		name      string
		header    time.Duration
		pipelined bool
	}{
		{"no header timeout, after an idle wait", 0, false},
		{"no header timeout, pipelined", 0, true},
		{"header timeout, after an idle wait", time.Minute, false},
		{"header timeout, pipelined", time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &testHandler{body: []byte("hello")}
			s := &Server{Handler: h, Fallback: &http.Server{}, ReadHeaderTimeout: tc.header, IdleTimeout: time.Minute,
				ParkAfter: 20 * time.Millisecond}
			addr := serveTest(t, s)
			a := dial(t, addr)
			io.WriteString(a, fastGet)
			readAnswer(t, a)
			if tc.pipelined {
				// The head's first part is left over after the request before it.
				io.WriteString(a, fastGet+"GET /fast HTTP/1.1\r\n")
				readAnswer(t, a)
			} else {
				io.WriteString(a, "GET /fast HTTP/1.1\r\n")
			}
			// b goes idle after a did: once b is parked, a's ParkAfter has
			// passed too.
			b := dial(t, addr)
			io.WriteString(b, fastGet)
			readAnswer(t, b)
			peertest.WaitFor(t, 0, "the later connection parked", func() bool { return s.Parked() == 1 })
			io.WriteString(a, "Host: x\r\n\r\n")
			if got := readAnswer(t, a); !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") {
				t.Fatalf("answer %q", got)
			}
		})
	}
}
