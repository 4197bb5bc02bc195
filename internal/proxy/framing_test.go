package proxy

import (
	"bufio"
	"gantry/internal/peertest"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// recorder is an upstream that keeps, per request, what framing it arrived
// with and what body it carried.
type recorder struct {
	mu   sync.Mutex
	reqs []string
	both bool // a request arrived with Content-Length and Transfer-Encoding
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		// A body cut off by the proxy is a failed request, not a forwarded one.
		return
	}
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, r.Method+" "+r.RequestURI+" "+string(body))
	if r.Header.Get("Content-Length") != "" && len(r.TransferEncoding) > 0 {
		rec.both = true
	}
	rec.mu.Unlock()
	io.WriteString(w, "ok")
}

func (rec *recorder) seen() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.reqs...)
}

// TestAmbiguousFramingNeverForwarded sends request-smuggling attempts as raw
// bytes to a real http.Server running the proxy. Whatever the front accepts
// must reach the upstream as the very same requests, each with one framing,
// so front and upstream can never disagree on where a request ends; what it
// cannot frame is refused before anything is forwarded.
func TestAmbiguousFramingNeverForwarded(t *testing.T) {
	const closeReq = "GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	tests := []struct {
		name   string
		raw    string
		status []string // status codes the client must see, in order
		want   []string // requests the upstream must see, in order
	}{
		{
			name: "CL.TE: Content-Length and chunked together",
			raw: "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"0\r\n\r\nGPOST /smuggled HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n" + closeReq,
			// Chunked wins (RFC 9112 §6.3) and Content-Length is dropped, so
			// the bytes after the empty chunk are the next request for the
			// front and the upstream alike: nothing hides inside another.
			status: []string{"200", "200", "200"},
			want:   []string{"POST /a ", "GPOST /smuggled ", "GET /last "},
		},
		{
			name: "TE.CL: chunked body longer than Content-Length",
			raw: "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"1a\r\nGET /smuggled HTTP/1.1\r\n\r\n\r\n0\r\n\r\n" + closeReq,
			status: []string{"200", "200"},
			want:   []string{"POST /a GET /smuggled HTTP/1.1\r\n\r\n", "GET /last "},
		},
		{
			name:   "two different Content-Lengths",
			raw:    "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 30\r\nConnection: close\r\n\r\nabc",
			status: []string{"400"},
		},
		{
			name:   "negative Content-Length",
			raw:    "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\nConnection: close\r\n\r\nabc",
			status: []string{"400"},
		},
		{
			name:   "Content-Length with a sign",
			raw:    "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\nConnection: close\r\n\r\nabc",
			status: []string{"400"},
		},
		{
			name:   "Content-Length list",
			raw:    "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\nConnection: close\r\n\r\nabc",
			status: []string{"400"},
		},
		{
			name:   "Transfer-Encoding other than chunked",
			raw:    "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
			status: []string{"501"},
		},
		{
			name: "two Transfer-Encoding fields",
			raw: "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n" +
				"Connection: close\r\n\r\n0\r\n\r\n",
			status: []string{"501"},
		},
		{
			name:   "obfuscated Transfer-Encoding name",
			raw:    "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
			status: []string{"400"},
		},
		{
			name:   "bad chunk size",
			raw:    "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
			status: []string{"400"},
		},
		{
			name:   "chunk data without its CRLF",
			raw:    "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabcXX0\r\n\r\n",
			status: []string{"400"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			f := startFront(t, Options{Upstream: startUpstream(t, rec), Route: "/"})
			out := rawRoundTrip(t, f.Addr, tc.raw)
			lines := statusLines(out)
			if len(lines) != len(tc.status) {
				t.Fatalf("responses %q, want statuses %q\n%s", lines, tc.status, out)
			}
			for i, code := range tc.status {
				if !strings.HasPrefix(lines[i], code+" ") {
					t.Errorf("response %d: %q, want %s", i, lines[i], code)
				}
			}
			got := rec.seen()
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("upstream saw %q, want %q", got, tc.want)
			}
			if rec.both {
				t.Error("a request reached the upstream with both Content-Length and Transfer-Encoding")
			}
		})
	}
}

// An upstream answering with both Content-Length and chunked framing must
// not pass that ambiguity on to the client.
func TestAmbiguousResponseFramingNotPassedOn(t *testing.T) {
	up := peertest.RawUpstream(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n"+
			"Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	})
	f := startFront(t, Options{Upstream: up, Route: "/"})
	out := rawRoundTrip(t, f.Addr, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	head, body, _ := strings.Cut(out, "\r\n\r\n")
	hasCL := strings.Contains(head, "\r\nContent-Length:")
	hasTE := strings.Contains(head, "\r\nTransfer-Encoding:")
	if hasCL && hasTE {
		t.Fatalf("client got both framings:\n%s", out)
	}
	if !strings.HasPrefix(head, "HTTP/1.1 200 ") || !strings.Contains(body, "hello") || strings.Contains(head, "Content-Length: 100") {
		t.Errorf("response not reframed from the chunked body:\n%s", out)
	}
}
