package h2

import (
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// A client that asks "expect: 100-continue" sends its body only after a 100
// (or its own timeout): the handler's first read of the body asks for it, as
// net/http's HTTP/2 server does, and the handler no longer sees the Expect
// field a gateway would hand on.
func TestExpectContinue(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, "expect="+r.Header.Get("Expect")+" body="+string(b))
	})
	ts := startServer(t, &Server{Handler: h})
	rc := ts.raw(t)
	rc.buf.Reset()
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":path", "/"}, {":authority", "localhost"},
		{"content-length", "3"}, {"expect", "100-continue"}} {
		rc.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.buf.Bytes(), EndHeaders: true})
	// Without a 100 the wait ends at this deadline and the test fails; a
	// correct server answers at once.
	rc.tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	f := rc.until("100 Continue", func(f http2.Frame) bool { return f.Header().StreamID == 1 })
	if hf, ok := f.(*http2.MetaHeadersFrame); !ok || hf.PseudoValue("status") != "100" || hf.StreamEnded() {
		t.Fatalf("stream 1 got %v, want a 100 Continue HEADERS", f)
	}
	rc.tc.SetReadDeadline(time.Now().Add(20 * time.Second))
	rc.fr.WriteData(1, true, []byte("abc"))
	hf := rc.until("the response", func(f http2.Frame) bool { _, ok := f.(*http2.MetaHeadersFrame); return ok && f.Header().StreamID == 1 }).(*http2.MetaHeadersFrame)
	if s := hf.PseudoValue("status"); s != "200" {
		t.Fatalf("status %s, want 200", s)
	}
	df := rc.until("the body", func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok && f.Header().StreamID == 1 }).(*http2.DataFrame)
	if got, want := string(df.Data()), "expect= body=abc"; got != want {
		t.Errorf("handler answered %q, want %q", got, want)
	}
}
