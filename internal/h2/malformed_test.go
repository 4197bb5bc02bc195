package h2

import (
	"io"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// A malformed request (RFC 9113 §8.1.1) is a stream error: the handler never
// sees it, so nothing a gateway or a proxy hands on carries a smuggled line, a
// connection-specific header or a body shorter or longer than declared.
func TestMalformedRequests(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, r.Method+" "+r.RequestURI)
	})
	ts := startServer(t, &Server{Handler: h})
	get := []string{":method", "GET", ":scheme", "https", ":path", "/", ":authority", "localhost"}
	with := func(base []string, name, value string) []string {
		out := []string{}
		replaced := false
		for i := 0; i < len(base); i += 2 {
			if base[i] == name {
				out = append(out, name, value)
				replaced = true
				continue
			}
			out = append(out, base[i], base[i+1])
		}
		if !replaced {
			out = append(out, name, value)
		}
		return out
	}
	without := func(name string) []string {
		out := []string{}
		for i := 0; i < len(get); i += 2 {
			if get[i] != name {
				out = append(out, get[i], get[i+1])
			}
		}
		return out
	}
	post := with(get, ":method", "POST")
	tests := []struct {
		name   string
		fields []string
		data   [][]byte // DATA frames after a HEADERS without END_STREAM
	}{
		{"method with CR LF", with(get, ":method", "GET / HTTP/1.1\r\nX-Smuggled: 1\r\n\r\nGET"), nil},
		{"method with a space", with(get, ":method", "GET /admin"), nil},
		{"method with NUL", with(get, ":method", "GE\x00T"), nil},
		{"empty method", with(get, ":method", ""), nil},
		{"scheme not http or https", with(get, ":scheme", "x\r\ny"), nil},
		{"path with CR LF", with(get, ":path", "/a\r\nX: y"), nil},
		{"path with a space", with(get, ":path", "/a b"), nil},
		{"path not starting with a slash", with(get, ":path", "a"), nil},
		{"authority with CR LF", with(get, ":authority", "a\r\nb"), nil},
		{"value with NUL", with(get, "x-a", "b\x00c"), nil},
		{"value with LF", with(get, "x-a", "b\nc"), nil},
		{"uppercase name", with(get, "X-A", "b"), nil},
		{"transfer-encoding", with(get, "transfer-encoding", "chunked"), nil},
		{"connection", with(get, "connection", "close"), nil},
		{"keep-alive", with(get, "keep-alive", "5"), nil},
		{"upgrade", with(get, "upgrade", "websocket"), nil},
		{"te other than trailers", with(get, "te", "gzip"), nil},
		{"duplicate path", append(append([]string{}, get...), ":path", "/b"), nil},
		{"missing method", without(":method"), nil},
		{"missing path", without(":path"), nil},
		{"missing scheme", without(":scheme"), nil},
		{"unknown pseudo-header", with(get, ":protocol", "x"), nil},
		{"pseudo-header after a regular one", append([]string{"x-a", "b"}, get...), nil},
		{"no authority, a Host with a space", append(without(":authority"), "host", "a b"), nil},
		{"no authority, a Host with a slash", append(without(":authority"), "host", "a/b"), nil},
		{"no authority, two Hosts", append(without(":authority"), "host", "a", "host", "b"), nil},
		{"content-length longer than DATA", with(post, "content-length", "10"), [][]byte{[]byte("abc")}},
		{"content-length shorter than DATA", with(post, "content-length", "2"), [][]byte{[]byte("abc")}},
		{"content-length shorter than two DATA", with(post, "content-length", "4"), [][]byte{[]byte("abc"), []byte("de")}},
		{"content-length not a number", with(post, "content-length", "+3"), [][]byte{[]byte("abc")}},
		{"content-lengths disagree", append(with(post, "content-length", "3"), "content-length", "4"), [][]byte{[]byte("abc")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := ts.raw(t)
			rc.buf.Reset()
			for i := 0; i < len(tt.fields); i += 2 {
				rc.enc.WriteField(hpack.HeaderField{Name: tt.fields[i], Value: tt.fields[i+1]})
			}
			rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.buf.Bytes(), EndStream: tt.data == nil, EndHeaders: true})
			for i, d := range tt.data {
				rc.fr.WriteData(1, i == len(tt.data)-1, d)
			}
			f := rc.until("an answer on stream 1", func(f http2.Frame) bool { return f.Header().StreamID == 1 })
			rst, ok := f.(*http2.RSTStreamFrame)
			if !ok {
				t.Fatalf("stream 1 got %v, want RST_STREAM PROTOCOL_ERROR", f)
			}
			if rst.ErrCode != http2.ErrCodeProtocol {
				t.Errorf("RST_STREAM %v, want PROTOCOL_ERROR", rst.ErrCode)
			}
			// The connection still serves a well-formed request.
			rc.get(3, "/ok", true)
			rc.until("an answer on stream 3", func(f http2.Frame) bool {
				hf, ok := f.(*http2.MetaHeadersFrame)
				return ok && hf.StreamID == 3
			})
		})
	}
}
