package compress

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"gantry/internal/abort"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"gantry/internal/config"
)

// decode undoes coding enc ("" for the identity) with the standard library for
// gzip and the codings' reference libraries for the others.
func decode(t *testing.T, enc string, body []byte) []byte {
	t.Helper()
	var r io.Reader
	switch enc {
	case "":
		return body
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("unexpected Content-Encoding %q", enc)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", enc, err)
	}
	return out
}

var page = []byte(strings.Repeat("<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n", 40))

func TestResponses(t *testing.T) {
	type app struct {
		header http.Header
		status int // 0: none written
		body   []byte
	}
	html := http.Header{"Content-Type": {"text/html; charset=utf-8"}}
	sized := func(h http.Header, n int) http.Header {
		h = h.Clone()
		h.Set("Content-Length", strconv.Itoa(n))
		return h
	}
	tests := []struct {
		name    string
		req     http.Header
		method  string
		app     app
		enc     string // the Content-Encoding wanted
		vary    bool
		checkFn func(t *testing.T, h http.Header)
	}{
		{name: "html in gzip", req: http.Header{"Accept-Encoding": {"gzip"}},
			app: app{header: html, body: page}, enc: "gzip", vary: true},
		{name: "html in zstd", req: http.Header{"Accept-Encoding": {"gzip, br, zstd"}},
			app: app{header: html, body: page}, enc: "zstd", vary: true},
		{name: "html in br", req: http.Header{"Accept-Encoding": {"gzip, br"}},
			app: app{header: html, body: page}, enc: "br", vary: true},
		{name: "no Accept-Encoding: the handler's answer untouched, no Vary (as Caddy's encode)", req: http.Header{},
			app: app{header: html, body: page}, vary: false},
		{name: "sized body: Content-Length dropped, ETag weak, no Accept-Ranges",
			req: http.Header{"Accept-Encoding": {"gzip"}},
			app: app{header: func() http.Header {
				h := sized(html, len(page))
				h.Set("Etag", `"abc"`)
				h.Set("Accept-Ranges", "bytes")
				return h
			}(), status: 200, body: page},
			enc: "gzip", vary: true,
			checkFn: func(t *testing.T, h http.Header) {
				if h.Get("Content-Length") != "" || h.Get("Accept-Ranges") != "" || h.Get("Etag") != `W/"abc"` {
					t.Errorf("header %v: want no Content-Length or Accept-Ranges and a weak ETag", h)
				}
			}},
		{name: "small body stays identity", req: http.Header{"Accept-Encoding": {"gzip"}},
			app: app{header: html, body: page[:minSize-1]}, vary: true},
		{name: "small sized body stays identity", req: http.Header{"Accept-Encoding": {"gzip"}},
			app: app{header: sized(html, 100), status: 200, body: page[:100]}, vary: true},
		{name: "an image is left alone", req: http.Header{"Accept-Encoding": {"gzip"}},
			app: app{header: http.Header{"Content-Type": {"image/png"}}, body: page}},
		{name: "json", req: http.Header{"Accept-Encoding": {"gzip"}},
			app: app{header: http.Header{"Content-Type": {"application/json"}}, body: page}, enc: "gzip", vary: true},
		{name: "svg by its +xml suffix", req: http.Header{"Accept-Encoding": {"gzip"}},
			app: app{header: http.Header{"Content-Type": {"IMAGE/SVG+XML"}}, body: page}, enc: "gzip", vary: true},
		{name: "no Content-Type: sniffed before compressing", req: http.Header{"Accept-Encoding": {"gzip"}},
			app: app{header: http.Header{}, body: append([]byte("<!DOCTYPE html>"), page...)}, enc: "gzip", vary: true,
			checkFn: func(t *testing.T, h http.Header) {
				if h.Get("Content-Type") != "text/html; charset=utf-8" {
					t.Errorf("Content-Type %q, want the sniffed text/html", h.Get("Content-Type"))
				}
			}},
		{name: "the backend's own Content-Encoding", req: http.Header{"Accept-Encoding": {"gzip"}},
			app: app{header: http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"br"}}, body: page}, vary: true,
			checkFn: func(t *testing.T, h http.Header) {
				if h.Get("Content-Encoding") != "br" {
					t.Errorf("Content-Encoding %q, want the backend's br", h.Get("Content-Encoding"))
				}
			}},
		{name: "Cache-Control: no-transform", req: http.Header{"Accept-Encoding": {"gzip"}},
			app: app{header: http.Header{"Content-Type": {"text/html"}, "Cache-Control": {"public, No-Transform"}}, body: page}, vary: true},
		{name: "a Range request", req: http.Header{"Accept-Encoding": {"gzip"}, "Range": {"bytes=0-9"}},
			app: app{header: html, body: page}, vary: true},
		{name: "a 206", req: http.Header{"Accept-Encoding": {"gzip"}},
			app: app{header: func() http.Header { h := html.Clone(); h.Set("Content-Range", "bytes 0-99/200"); return h }(), status: 206, body: page}, vary: true},
		{name: "HEAD", method: "HEAD", req: http.Header{"Accept-Encoding": {"gzip"}},
			app: app{header: sized(html, len(page)), status: 200}, vary: true,
			checkFn: func(t *testing.T, h http.Header) {
				if h.Get("Content-Length") != strconv.Itoa(len(page)) {
					t.Errorf("HEAD Content-Length %q, want the identity's", h.Get("Content-Length"))
				}
			}},
		{name: "304", req: http.Header{"Accept-Encoding": {"gzip"}},
			app: app{header: http.Header{"Etag": {`"abc"`}}, status: 304},
			checkFn: func(t *testing.T, h http.Header) {
				if h.Get("Etag") != `"abc"` {
					t.Errorf("304 ETag %q changed", h.Get("Etag"))
				}
			}},
		{name: "an error page is compressed too", req: http.Header{"Accept-Encoding": {"gzip"}},
			app: app{header: html, status: 404, body: page}, enc: "gzip", vary: true},
		{name: "Vary is added to the application's", req: http.Header{"Accept-Encoding": {"gzip"}},
			app: app{header: http.Header{"Content-Type": {"text/html"}, "Vary": {"Cookie"}}, body: page}, enc: "gzip",
			checkFn: func(t *testing.T, h http.Header) {
				if got := strings.Join(h["Vary"], ", "); got != "Cookie, Accept-Encoding" {
					t.Errorf("Vary %q", got)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &Options{}
			o.Provision(nil)
			h, _ := wrap(o, configEnv(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.app.header {
					w.Header()[k] = v
				}
				if tc.app.status != 0 {
					w.WriteHeader(tc.app.status)
				}
				if r.Method != "HEAD" && tc.app.body != nil {
					// In pieces, as a gateway writes.
					for b := tc.app.body; len(b) > 0; {
						n := min(len(b), 100)
						w.Write(b[:n])
						b = b[n:]
					}
				}
			}))
			method := tc.method
			if method == "" {
				method = "GET"
			}
			req := httptest.NewRequest(method, "/", nil)
			req.Header = tc.req
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := rec.Result()
			if got := res.Header.Get("Content-Encoding"); got != tc.enc && !(tc.enc == "" && tc.app.header.Get("Content-Encoding") == got) {
				t.Fatalf("Content-Encoding %q, want %q", got, tc.enc)
			}
			hasVary := strings.Contains(strings.Join(res.Header["Vary"], ","), "Accept-Encoding")
			if hasVary != tc.vary && tc.checkFn == nil {
				t.Errorf("Vary %q: want Accept-Encoding %v", res.Header["Vary"], tc.vary)
			}
			want := tc.app.body
			if method == "HEAD" {
				want = nil
			}
			if tc.app.header.Get("Content-Encoding") == "" {
				if got := decode(t, tc.enc, rec.Body.Bytes()); !bytes.Equal(got, want) {
					t.Errorf("body decodes to %d bytes, want the %d written", len(got), len(want))
				}
			}
			if tc.enc != "" && rec.Body.Len() >= len(want) {
				t.Errorf("compressed body %d bytes, not smaller than %d", rec.Body.Len(), len(want))
			}
			if tc.checkFn != nil {
				tc.checkFn(t, res.Header)
			}
		})
	}
}

// A streamed response reaches the client as it is flushed, compressed: the
// handler waits for the client to have read each event before sending the next.
func TestFlushStreams(t *testing.T) {
	for _, enc := range []string{"gzip", "zstd", "br"} {
		t.Run(enc, func(t *testing.T) {
			o := &Options{Compress: Setting{set: true, names: []string{enc}}}
			o.Provision(nil)
			read := make(chan struct{})
			h, _ := wrap(o, configEnv(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for i := range 3 {
					io.WriteString(w, "data: event "+strconv.Itoa(i)+"\n\n")
					http.NewResponseController(w).Flush()
					select {
					case <-read:
					case <-r.Context().Done():
						return
					}
				}
			}))
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			// A deadline, not a wait: an event held back fails the read.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
			req.Header.Set("Accept-Encoding", enc)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.Header.Get("Content-Encoding") != enc {
				t.Fatalf("Content-Encoding %q, want %s", res.Header.Get("Content-Encoding"), enc)
			}
			var dr io.Reader
			switch enc {
			case "gzip":
				if dr, err = gzip.NewReader(res.Body); err != nil {
					t.Fatal(err)
				}
			case "zstd":
				zr, err := zstd.NewReader(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				dr = zr
			case "br":
				dr = brotli.NewReader(res.Body)
			}
			br := bufio.NewReader(dr)
			for i := range 3 {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if want := "data: event " + strconv.Itoa(i) + "\n"; line != want {
					t.Fatalf("event %d: %q, want %q", i, line, want)
				}
				br.ReadString('\n')
				read <- struct{}{}
			}
		})
	}
}

func TestOffNoWrapper(t *testing.T) {
	for name, s := range map[string]Setting{"false": {set: true, names: []string{}}} {
		o := &Options{Compress: s}
		o.Provision(nil)
		if h, err := wrap(o, configEnv(), http.NotFoundHandler()); h != nil || err != nil {
			t.Errorf("compress = %s: wrap = %v, %v; want nil, nil", name, h, err)
		}
	}
}

// A compressed response keeps to the Content-Length its handler declared, since
// the client no longer sees it: more is dropped with http.ErrContentLength, as
// net/http does; less ends the response with a panic(http.ErrAbortHandler)
// instead of a well-formed stream (the server test
// TestCompressShortBackendIsCut shows what the client gets).
func TestDeclaredLengthKept(t *testing.T) {
	tests := []struct {
		name     string
		declared int
		write    int
		wantErr  error
		wantBody int
		aborted  bool
	}{
		{name: "exact", declared: len(page), write: len(page), wantBody: len(page)},
		{name: "more than declared", declared: 600, write: len(page), wantErr: http.ErrContentLength, wantBody: 600},
		{name: "less than declared", declared: len(page) + 100, write: len(page), aborted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := wrap(&Options{codings: []*coding{codingNamed("gzip")}}, config.Env{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Content-Length", strconv.Itoa(tc.declared))
				_, err := w.Write(page[:tc.write])
				if err != tc.wantErr {
					t.Errorf("Write: %v, want %v", err, tc.wantErr)
				}
			}))
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			rec := httptest.NewRecorder()
			aborted := func() (aborted bool) {
				defer func() {
					if v := recover(); v != nil {
						if v != http.ErrAbortHandler {
							panic(v)
						}
						aborted = true
					}
				}()
				h.ServeHTTP(rec, req)
				return false
			}()
			if aborted != tc.aborted {
				t.Fatalf("aborted %v, want %v", aborted, tc.aborted)
			}
			if tc.aborted {
				return
			}
			if got := decode(t, "gzip", rec.Body.Bytes()); len(got) != tc.wantBody {
				t.Errorf("decoded %d bytes, want %d", len(got), tc.wantBody)
			}
		})
	}
}

// goneWriter is a client that stops taking bytes after limit: its writes fail.
type goneWriter struct {
	*httptest.ResponseRecorder
	limit int
	why   abort.Reason
}

func (g *goneWriter) Write(p []byte) (int, error) {
	if g.Body.Len()+len(p) > g.limit {
		return 0, errors.New("write: broken pipe")
	}
	return g.ResponseRecorder.Write(p)
}

func (g *goneWriter) SetAborted(why abort.Reason) { g.why = why }

// A client that leaves in the middle of a compressed response cuts it short of
// its declared length: that is the client's doing, not a short backend, and
// must not be logged as a backend fault.
func TestClientGoneIsNotABackendFault(t *testing.T) {
	var logged bytes.Buffer
	big := bytes.Repeat([]byte("<p>gantry compresses this line again and again</p>\n"), 4000)
	h, _ := wrap(&Options{codings: []*coding{codingNamed("gzip")}}, config.Env{Log: slog.New(slog.NewTextHandler(&logged, nil))},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			for off := 0; off < len(big); off += 4096 {
				if _, err := w.Write(big[off:min(off+4096, len(big))]); err != nil {
					return // as a handler does when the client is gone
				}
				http.NewResponseController(w).Flush()
			}
		}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	gw := &goneWriter{ResponseRecorder: httptest.NewRecorder(), limit: 300}
	func() {
		defer func() {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				panic(v)
			}
		}()
		h.ServeHTTP(gw, req)
	}()
	if gw.why != abort.Client {
		t.Errorf("aborted %q, want %q", gw.why, abort.Client)
	}
	if strings.Contains(logged.String(), "shorter than") {
		t.Errorf("a client that left was logged as a backend fault:\n%s", logged.String())
	}
}
