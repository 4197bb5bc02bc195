package h2

import (
	"io"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
)

// An inline answer runs on the connection's reader goroutine: one that panics
// (mid-answer, too) resets its stream as a handler's panic does, instead of
// ending the process, and the connection goes on serving.
func TestInlinePanic(t *testing.T) {
	inline := func(w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Path {
		case "/panic":
			io.WriteString(w, "half an answer")
			w.(http.Flusher).Flush()
			panic("a bug in the cache")
		case "/inline":
			io.WriteString(w, "inline")
			return true
		}
		return false
	}
	ts := startServer(t, &Server{Handler: http.NotFoundHandler(), Inline: inline})
	rc := ts.raw(t)
	rc.get(1, "/panic", true)
	f := rc.until("RST_STREAM", func(f http2.Frame) bool { _, ok := f.(*http2.RSTStreamFrame); return ok }).(*http2.RSTStreamFrame)
	if f.StreamID != 1 || f.ErrCode != http2.ErrCodeInternal {
		t.Errorf("RST_STREAM %v on stream %d, want INTERNAL_ERROR on 1", f.ErrCode, f.StreamID)
	}
	rc.get(3, "/inline", true)
	d := rc.until("DATA on stream 3", func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok && f.Header().StreamID == 3 }).(*http2.DataFrame)
	if string(d.Data()) != "inline" {
		t.Errorf("stream 3: %q", d.Data())
	}
}
