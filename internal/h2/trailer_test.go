package h2

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Request trailers reach the handler (and a proxy's backend, which
// httputil.ReverseProxy sends them to) only under names HTTP/1.1 allows in a
// trailer: a declared Content-Length, Transfer-Encoding or Trailer is dropped,
// as net/http drops it, so a trailer never reframes what a backend reads.
func TestRequestTrailers(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			panic(http.ErrAbortHandler)
		}
		var keys []string
		for k, v := range r.Trailer {
			keys = append(keys, fmt.Sprintf("%s=%q", k, v))
		}
		slices.Sort(keys)
		fmt.Fprintf(w, "trailer=%v header-trailer=%q", keys, r.Header["Trailer"])
	})
	ts := startServer(t, &Server{Handler: h})
	rc := ts.raw(t)
	block := func(fields ...string) []byte {
		rc.buf.Reset()
		for i := 0; i < len(fields); i += 2 {
			rc.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return append([]byte(nil), rc.buf.Bytes()...)
	}
	rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, BlockFragment: block(
		":method", "POST", ":scheme", "https", ":path", "/", ":authority", "localhost",
		"trailer", "content-length, transfer-encoding, trailer, x-sum")})
	rc.fr.WriteData(1, false, []byte("abc"))
	rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true, BlockFragment: block(
		"content-length", "99", "x-sum", "s")})
	df := rc.until("the body", func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok && f.Header().StreamID == 1 }).(*http2.DataFrame)
	if got, want := string(df.Data()), `trailer=[X-Sum=["s"]] header-trailer=[]`; got != want {
		t.Errorf("handler saw %s, want %s", got, want)
	}
}
