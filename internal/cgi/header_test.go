package cgi

import (
	"net/http"
	"strings"
	"testing"

	"gantry/internal/httpfield"
)

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		nph      bool
		status   int
		header   http.Header
		location string
		used     int    // bytes of the header block; -1: the whole input
		err      string // "" for success
	}{
		{name: "crlf", in: "Content-Type: text/html\r\n\r\nbody", header: http.Header{"Content-Type": {"text/html"}}, used: 27},
		{name: "lf", in: "Content-Type: text/html\n\nbody", header: http.Header{"Content-Type": {"text/html"}}, used: 25},
		{name: "mixed endings", in: "A: 1\r\nB: 2\n\r\n", header: http.Header{"A": {"1"}, "B": {"2"}}, used: -1},
		{name: "status with reason", in: "Status: 404 Not Found\n\n", status: 404, header: http.Header{}, used: -1},
		{name: "status bare", in: "Status: 503\n\n", status: 503, header: http.Header{}, used: -1},
		{name: "canonical names", in: "x-custom-thing: v\n\n", header: http.Header{"X-Custom-Thing": {"v"}}, used: -1},
		{name: "values trimmed", in: "X: \t v \t\n\n", header: http.Header{"X": {"v"}}, used: -1},
		{name: "empty value", in: "X:\n\n", header: http.Header{"X": {""}}, used: -1},
		{name: "repeated fields", in: "Set-Cookie: a\nSet-Cookie: b\n\n", header: http.Header{"Set-Cookie": {"a", "b"}}, used: -1},
		{name: "folded", in: "X: a\n b\n\tc\n\n", header: http.Header{"X": {"a b c"}}, used: -1},
		{name: "obs-text allowed", in: "X: caf\xc3\xa9\n\n", header: http.Header{"X": {"caf\xc3\xa9"}}, used: -1},
		{name: "location", in: "Location: /x?y\n\n", location: "/x?y", header: http.Header{"Location": {"/x?y"}}, used: -1},
		{name: "hop-by-hop dropped", in: "Connection: close\nTransfer-Encoding: chunked\nKeep-Alive: 5\nUpgrade: h2c\n\n", header: http.Header{}, used: -1},
		{name: "content-length kept", in: "Content-Length: 12\n\n", header: http.Header{"Content-Length": {"12"}}, used: -1},
		{name: "nph status line", in: "HTTP/1.1 200 OK\r\nX: y\r\n\r\n", nph: true, status: 200, header: http.Header{"X": {"y"}}, used: -1},
		{name: "incomplete", in: "Content-Type: text/html\n", err: "incomplete"},
		{name: "incomplete empty", in: "", err: "incomplete"},
		{name: "no colon", in: "hello world\n\n", err: "no field name"},
		{name: "empty name", in: ": v\n\n", err: "no field name"},
		{name: "space in name", in: "Bad Name: v\n\n", err: "not a token"},
		{name: "space before colon", in: "X : v\n\n", err: "not a token"},
		{name: "NUL in value", in: "X: a\x00b\n\n", err: "control byte"},
		{name: "CR in value", in: "X: a\rSet-Cookie: evil\n\n", err: "control byte"},
		{name: "DEL in value", in: "X: a\x7fb\n\n", err: "control byte"},
		{name: "high byte in name", in: "X\xff: v\n\n", err: "not a token"},
		{name: "status word", in: "Status: OK\n\n", err: "bogus Status"},
		{name: "status too long", in: "Status: 2000\n\n", err: "bogus Status"},
		{name: "status informational", in: "Status: 100 Continue\n\n", err: "not a final"},
		{name: "status 600", in: "Status: 600\n\n", err: "not a final"},
		{name: "status twice", in: "Status: 200\nStatus: 404\n\n", err: "more than one Status"},
		{name: "status signed", in: "Status: +20\n\n", err: "bogus Status"},
		{name: "content-length negative", in: "Content-Length: -1\n\n", err: "bogus Content-Length"},
		{name: "content-length conflict", in: "Content-Length: 1\nContent-Length: 2\n\n", err: "conflicting"},
		{name: "location twice", in: "Location: /a\nLocation: /b\n\n", err: "more than one Location"},
		{name: "fold first", in: " X: v\n\n", err: "continuation line"},
		{name: "nph bad status line", in: "HTTP/2 200 OK\n\n", nph: true, err: "bogus nph status line"},
		{name: "nph with Status", in: "HTTP/1.0 200 OK\nStatus: 404\n\n", nph: true, err: "nph script sent a Status"},
		{name: "header too long", in: strings.Repeat("X: y\n", maxHeaderBytes/5+1), err: "header longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, n, err := parseHeader([]byte(tc.in), tc.nph)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err %v", err)
			}
			want := tc.used
			if want < 0 {
				want = len(tc.in)
			}
			if n != want {
				t.Errorf("used %d bytes, want %d", n, want)
			}
			if resp.status != tc.status || resp.location != tc.location {
				t.Errorf("status %d location %q, want %d %q", resp.status, resp.location, tc.status, tc.location)
			}
			if len(resp.header) != len(tc.header) {
				t.Errorf("header %v, want %v", resp.header, tc.header)
			}
			for k, v := range tc.header {
				if strings.Join(resp.header[k], "|") != strings.Join(v, "|") {
					t.Errorf("%s = %q, want %q", k, resp.header[k], v)
				}
			}
		})
	}
}

// FuzzParseHeader checks that no script output can panic the parser or get a field
// with control bytes, a bad name or an impossible status past it.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte("Content-Type: text/html\r\n\r\nbody"), false)           // the usual
	f.Add([]byte("Status: 302 Found\nLocation: /x\n\n"), false)           // redirect
	f.Add([]byte("X: a\n b\n\n"), false)                                  // folding
	f.Add([]byte("X: a\rSet-Cookie: y\n\n"), false)                       // header injection
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), true) // nph
	f.Add([]byte("Content-Length: 1\nContent-Length: 01\n\n"), false)     // smuggling
	f.Fuzz(func(t *testing.T, b []byte, nph bool) {
		resp, n, err := parseHeader(b, nph)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("used %d of %d bytes", n, len(b))
		}
		if resp.status != 0 && (resp.status < 200 || resp.status > 599) {
			t.Fatalf("status %d", resp.status)
		}
		for k, vs := range resp.header {
			if !httpfield.ValidName([]byte(k)) || hopByHop[k] || k == "Status" {
				t.Fatalf("field name %q passed", k)
			}
			for _, v := range vs {
				if !httpfield.ValidValue([]byte(v)) {
					t.Fatalf("value %q passed", v)
				}
			}
		}
		if len(resp.header["Content-Length"]) > 1 {
			t.Fatalf("two Content-Length values passed")
		}
	})
}

func BenchmarkParseHeader(b *testing.B) {
	in := []byte("Content-Type: text/html; charset=utf-8\r\nSet-Cookie: a=1\r\nCache-Control: no-store\r\n\r\nbody")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := parseHeader(in, false); err != nil {
			b.Fatal(err)
		}
	}
}
