package fastcgi

import (
	"net/http"
	"testing"

	"gantry/internal/httpfield"
)

func TestParseHeaderBlock(t *testing.T) {
	tests := []struct {
		name       string
		block      string
		wantStatus int
		want       http.Header
		wantErr    bool
	}{
		{"php default", "X-Powered-By: PHP/8.2\r\nContent-type: text/html; charset=UTF-8\r\n\r\n", 200,
			http.Header{"X-Powered-By": {"PHP/8.2"}, "Content-Type": {"text/html; charset=UTF-8"}}, false},
		{"names canonicalized", "content-TYPE: text/plain\r\nETag: \"x\"\r\nx-custom-thing: 1\r\n\r\n", 200,
			http.Header{"Content-Type": {"text/plain"}, "Etag": {`"x"`}, "X-Custom-Thing": {"1"}}, false},
		{"status with reason", "Status: 404 Not Found\r\n\r\n", 404, http.Header{}, false},
		{"status without reason", "Status: 503\n\n", 503, http.Header{}, false},
		{"location without status is 302", "Location: /x\r\n\r\n", 302, http.Header{"Location": {"/x"}}, false},
		{"location with status keeps it", "Status: 301 Moved\r\nLocation: /x\r\n\r\n", 301, http.Header{"Location": {"/x"}}, false},
		{"repeated headers kept", "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n", 200, http.Header{"Set-Cookie": {"a=1", "b=2"}}, false},
		{"hop-by-hop dropped", "Connection: close\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n", 200, http.Header{"X-A": {"1"}}, false},
		{"space in name", "Bad Name: x\r\n\r\n", 0, nil, true},
		{"no colon", "garbage\r\n\r\n", 0, nil, true},
		{"folded line", "X-A: 1\r\n continued\r\n\r\n", 0, nil, true},
		{"control byte in value", "X-A: a\x01b\r\n\r\n", 0, nil, true},
		{"NUL in value", "X-A: a\x00b\r\n\r\n", 0, nil, true},
		{"bogus status", "Status: abc\r\n\r\n", 0, nil, true},
		{"status out of range", "Status: 999\r\n\r\n", 0, nil, true},
		{"informational status", "Status: 101\r\n\r\n", 0, nil, true},
		{"two statuses", "Status: 200\r\nStatus: 404\r\n\r\n", 0, nil, true},
		{"bad content-length", "Content-Length: -1\r\n\r\n", 0, nil, true},
		{"conflicting content-length", "Content-Length: 1\r\nContent-Length: 2\r\n\r\n", 0, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := headerEnd([]byte(tt.block))
			if n != len(tt.block) {
				t.Fatalf("headerEnd = %d, want %d", n, len(tt.block))
			}
			h := http.Header{}
			status, err := parseHeaderBlock([]byte(tt.block[:n]), h)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if status != tt.wantStatus {
				t.Errorf("status %d, want %d", status, tt.wantStatus)
			}
			if len(h) != len(tt.want) {
				t.Errorf("headers %v, want %v", h, tt.want)
			}
			for k, v := range tt.want {
				if got := h[k]; len(got) != len(v) || (len(v) > 0 && got[0] != v[0]) || (len(v) > 1 && got[1] != v[1]) {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestHeaderEnd(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"A: b\r\n\r\nbody", 8},
		{"A: b\n\nbody", 6},
		{"\r\nbody", 2},
		{"A: b\r\n", -1},
		{"A: b\r\n\r", -1},
		{"", -1},
	}
	for _, tt := range tests {
		if got := headerEnd([]byte(tt.in)); got != tt.want {
			t.Errorf("headerEnd(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// FuzzParseHeaderBlock: no input panics, and nothing accepted can carry a control
// byte into a response header.
func FuzzParseHeaderBlock(f *testing.F) {
	f.Add([]byte("Content-type: text/html\r\n\r\n"))          // PHP's usual
	f.Add([]byte("Status: 302 Found\r\nLocation: /\r\n\r\n")) // redirect
	f.Add([]byte("X: a\r\n b\r\n\r\n"))                       // obs-fold
	f.Add([]byte("Status: 20\r\n\r\n"))                       // short status
	f.Fuzz(func(t *testing.T, b []byte) {
		n := headerEnd(b)
		if n < 0 {
			return
		}
		h := http.Header{}
		status, err := parseHeaderBlock(b[:n], h)
		if err != nil {
			return
		}
		if status < 200 || status > 599 {
			t.Fatalf("status %d accepted", status)
		}
		for k, vs := range h {
			if !httpfield.ValidName([]byte(k)) {
				t.Fatalf("name %q accepted", k)
			}
			for _, v := range vs {
				if !httpfield.ValidValue([]byte(v)) {
					t.Fatalf("value %q accepted", v)
				}
			}
		}
	})
}
