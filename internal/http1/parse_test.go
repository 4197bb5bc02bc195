package http1

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// TestParse covers what the parser accepts and what it leaves to net/http. Every
// handoff is answered by net/http exactly as without the fast path (400 for the
// malformed ones, 431 for oversized heads, the request served for the valid but
// ineligible ones); internal/server's TestFastPathDifferential checks the answers.
func TestParse(t *testing.T) {
	const ok = "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
	cases := []struct {
		name string
		in   string
		want verdict
	}{
		{"get", ok, ready},
		{"head", "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", ready},
		{"http/1.0 without host", "GET / HTTP/1.0\r\n\r\n", ready},
		{"query", "GET /a?b=%20c&d=/e?f HTTP/1.1\r\nHost: x\r\n\r\n", ready},
		{"content-length 0", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", ready},
		{"ows around value", "GET / HTTP/1.1\r\nHost:  x \t\r\nA:\tb \r\n\r\n", ready},
		{"empty value", "GET / HTTP/1.1\r\nHost: x\r\nA:\r\n\r\n", ready},
		{"obs-text value", "GET / HTTP/1.1\r\nHost: x\r\nA: caf\xc3\xa9\r\n\r\n", ready},
		{"incomplete request line", "GET /a.txt HTT", needMore},
		{"incomplete head", "GET /a.txt HTTP/1.1\r\nHost: x\r\n", needMore},

		// Ineligible, valid or not: net/http's to answer.
		{"post", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx", handoff},
		{"options", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", handoff},
		{"lowercase method", "get / HTTP/1.1\r\nHost: x\r\n\r\n", handoff},
		{"no host", "GET / HTTP/1.1\r\n\r\n", handoff},
		{"two hosts", "GET / HTTP/1.1\r\nHost: x\r\nhost: y\r\n\r\n", handoff},
		{"host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", handoff},
		{"host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", handoff},
		{"http/1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", handoff},
		{"http/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", handoff},
		{"http/0.9", "GET /\r\n\r\n", handoff},
		{"lowercase version", "GET / http/1.1\r\nHost: x\r\n\r\n", handoff},
		{"absolute form", "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", handoff},
		{"asterisk", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", handoff},
		{"two spaces", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", handoff},
		{"trailing space", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", handoff},
		{"tab separator", "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", handoff},
		{"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", handoff},
		{"percent", "GET /%2e%2e/x HTTP/1.1\r\nHost: x\r\n\r\n", handoff},
		{"dot segment", "GET /a/../b HTTP/1.1\r\nHost: x\r\n\r\n", handoff},
		{"dotfile", "GET /.env HTTP/1.1\r\nHost: x\r\n\r\n", handoff},
		{"double slash", "GET //a HTTP/1.1\r\nHost: x\r\n\r\n", handoff},
		{"backslash", "GET /a\\b HTTP/1.1\r\nHost: x\r\n\r\n", handoff},
		{"fragment in query", "GET /a?b#c HTTP/1.1\r\nHost: x\r\n\r\n", handoff},
		{"sub-delim url.URL escapes", "GET /a!b HTTP/1.1\r\nHost: x\r\n\r\n", handoff},
		{"same in the query", "GET /a?b=(c)*! HTTP/1.1\r\nHost: x\r\n\r\n", ready},
		{"utf-8 path", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", handoff},
		{"expect", "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", handoff},
		{"upgrade", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", handoff},
		{"connection list", "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n\r\n", handoff},
		{"too many fields", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("A: b\r\n", maxFields) + "\r\n", handoff},
		{"head too long", "GET / HTTP/1.1\r\nHost: x\r\nA: " + strings.Repeat("b", 250) + "\r\n\r\n", handoff},
		{"unfinished head too long", "GET / HTTP/1.1\r\nHost: x\r\nA: " + strings.Repeat("b", 300), handoff},

		// Request smuggling shapes (RFC 9112 §6.3, §11.2).
		{"cl and te", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", handoff},
		{"te with cl 0", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n", handoff},
		{"te alone", "GET / HTTP/1.1\r\nHost: x\r\ntransfer-encoding: identity\r\n\r\n", handoff},
		{"content-length 1", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n", handoff},
		{"content-length 00", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 00\r\n\r\n", handoff},
		{"content-length +0", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +0\r\n\r\n", handoff},
		{"content-length list", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 0\r\n\r\n", handoff},
		{"bare lf everywhere", "GET / HTTP/1.1\nHost: x\n\n", handoff},
		{"bare lf after request line", "GET / HTTP/1.1\nHost: x\r\n\r\n", handoff},
		{"bare lf in a field", "GET / HTTP/1.1\r\nHost: x\nA: b\r\n\r\n", handoff},
		{"bare lf ends head early", "GET / HTTP/1.1\r\nHost: x\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", handoff},
		{"bare lf incomplete", "GET / HTTP/1.1\r\nHost: x\n", handoff},
		{"bare cr", "GET / HTTP/1.1\r\nHost: x\rA: b\r\n\r\n", handoff},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n", handoff},
		{"obs-fold tab", "GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n\tc\r\n\r\n", handoff},
		{"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", handoff},
		{"tab before colon", "GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", handoff},
		{"empty name", "GET / HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n", handoff},
		{"no colon", "GET / HTTP/1.1\r\nHost: x\r\nAb\r\n\r\n", handoff},
		{"nul in value", "GET / HTTP/1.1\r\nHost: x\r\nA: b\x00c\r\n\r\n", handoff},
		{"del in value", "GET / HTTP/1.1\r\nHost: x\r\nA: b\x7fc\r\n\r\n", handoff},
		{"nul in target", "GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", handoff},
		{"nul in name", "GET / HTTP/1.1\r\nHost: x\r\nA\x00: b\r\n\r\n", handoff},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h head
			n, v := parse([]byte(tc.in), &h, 256)
			if v != tc.want {
				t.Fatalf("verdict %d, want %d", v, tc.want)
			}
			if v == ready && n != len(tc.in) {
				t.Errorf("head length %d, want %d", n, len(tc.in))
			}
		})
	}
}

// FuzzParse checks that what the parser takes for the fast path, net/http reads the
// same way: same method, target, version and header fields, no body, and that a
// connection header means the same.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n",                                      // the common case
		"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",                           // HTTP/1.0 keep-alive
		"GET /a?b=c HTTP/1.1\r\nHost: x:80\r\nAccept-Encoding: gzip\r\n\r\n",          // query and port
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",                      // an empty body declared
		"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",    // smuggling: TE on a GET
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n", // two lengths
		"GET / HTTP/1.1\nHost: x\n\n",                                                 // bare LF
		"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n",                             // obs-fold
		"GET / HTTP/1.1\r\nHost : x\r\n\r\n",                                          // space before colon
		"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",                                   // absolute-form
		"GET /! HTTP/1.1\r\nHost: x\r\n\r\n",                                          // found by fuzzing: net/http keeps a RawPath for "!"
		"GET / HTTP/1.1\r\nhost: x\r\nconnection: CLOSE\r\nuser-agent: \xff\r\n\r\n",  // case and obs-text
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var h head
		n, v := parse(in, &h, 4096)
		if v != ready {
			return
		}
		if n > len(in) || !bytes.HasSuffix(in[:n], crlfcrlf) {
			t.Fatalf("head length %d of %d", n, len(in))
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(in[:n])))
		if err != nil {
			t.Fatalf("fast path took a request net/http refuses: %v", err)
		}
		if req.Method != string(h.method) || req.RequestURI != string(h.target) || req.ProtoMinor != h.minor || req.ProtoMajor != 1 {
			t.Fatalf("request line read as %s %s %s", req.Method, req.RequestURI, req.Proto)
		}
		if req.ContentLength != 0 || len(req.TransferEncoding) != 0 {
			t.Fatalf("net/http sees a body: length %d, transfer-encoding %v", req.ContentLength, req.TransferEncoding)
		}
		if h.hasHost && req.Host != string(h.host) {
			t.Fatalf("host %q, net/http %q", h.host, req.Host)
		}
		wantClose := h.close || (h.minor == 0 && !h.keep)
		if req.Close != wantClose {
			t.Fatalf("close %v, net/http %v", wantClose, req.Close)
		}
		var c conn
		c.st = &reqState{intern: map[string]string{}, hdr: http.Header{}, head: h}
		if !c.fill() {
			return
		}
		for i := 0; i < h.nfields; i++ {
			key := http.CanonicalHeaderKey(string(h.fields[i].name))
			if key == "Host" {
				continue // net/http moves it to req.Host
			}
			got := req.Header.Values(key)
			if len(got) != 1 || got[0] != string(h.fields[i].value) {
				t.Fatalf("field %s = %q, net/http %q", key, h.fields[i].value, got)
			}
			if c.st.hdr.Get(key) != got[0] {
				t.Fatalf("field %s filled as %q", key, c.st.hdr.Get(key))
			}
		}
		if len(c.st.hdr) != len(req.Header) {
			t.Fatalf("header %v, net/http %v", c.st.hdr, req.Header)
		}
		if u := c.st.req.URL; u.RequestURI() != req.URL.RequestURI() || u.Path != req.URL.Path || u.RawQuery != req.URL.RawQuery {
			t.Fatalf("url %+v, net/http %+v", c.st.url, *req.URL)
		}
	})
}
