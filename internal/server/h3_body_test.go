package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"gantry/internal/peertest"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"gantry/internal/h3"
)

// serveH3 serves srv's handler chain over HTTP/3 and returns its base URL and a
// client for it.
func serveH3(t *testing.T, srv *Server) (string, *http.Client) {
	t.Helper()
	cfg, pool := peertest.SelfSigned(t)
	hs, err := h3.Listen(context.Background(), "127.0.0.1:0", h3.Options{Handler: srv, TLSConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve() }()
	t.Cleanup(func() {
		hs.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("http3 Serve: %v", err)
		}
	})
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(func() { tr.Close() })
	return "https://127.0.0.1:" + strconv.Itoa(hs.Port()), &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

func h3Do(t *testing.T, c *http.Client, method, url string, body io.Reader, length int64) (int, bodySeen) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Proto != "HTTP/3.0" {
		t.Fatalf("answered over %s, want HTTP/3.0", resp.Proto)
	}
	return resp.StatusCode, parseSeen(string(out))
}

// An HTTP/3 request body has a length only when the client sends a
// Content-Length; one without arrives as r.ContentLength == -1, as a chunked
// HTTP/1.1 body does, and every gateway sees it as it sees a chunked one.
func TestH3GatewayBodies(t *testing.T) {
	b := startBodyServer(t)
	base, c := serveH3(t, b.srv)
	body := randomBody(2 << 20)
	size := strconv.Itoa(len(body))
	tests := []struct {
		name, path string
		known      bool
		wantCL     string
	}{
		{"cgi spooled, length", "/cgi-bin/sum.pl", true, size},
		{"cgi spooled, no length", "/cgi-bin/sum.pl", false, size},
		{"php spooled, no length", "/sum.php", false, size},
		{"wsgi spooled, no length", "/py/sum", false, size},
		{"cgi streamed, no length", "/s/cgi-bin/sum.pl", false, size},
		{"php streamed, length", "/s/sum.php", true, size},
		{"php streamed, no length", "/s/sum.php", false, size},
		{"wsgi streamed, no length", "/s/py/sum", false, "unset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(body)
			length := int64(len(body))
			if !tt.known {
				r, length = struct{ io.Reader }{r}, -1
			}
			status, got := h3Do(t, c, "POST", base+tt.path, r, length)
			if status != 200 {
				t.Fatalf("status %d", status)
			}
			checkSeen(t, got, body, tt.wantCL)
		})
	}
}

// Over HTTP/3 even a GET has no length (its stream could still carry DATA):
// the backend must see it as it sees an HTTP/1.1 GET, not as an empty upload.
func TestH3BodilessRequestsLikeHTTP1(t *testing.T) {
	b := startBodyServer(t)
	base, c := serveH3(t, b.srv)
	for _, path := range []string{"/cgi-bin/sum.pl", "/sum.php", "/py/sum", "/s/cgi-bin/sum.pl", "/s/sum.php", "/s/py/sum"} {
		for _, method := range []string{"GET", "DELETE"} {
			t.Run(method+" "+path, func(t *testing.T) {
				req, _ := http.NewRequest(method, b.base+path, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := parseSeen(string(out))
				status, got := h3Do(t, c, method, base+path, nil, 0)
				if status != resp.StatusCode || fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("HTTP/3: %d %v\nHTTP/1.1: %d %v", status, got, resp.StatusCode, want)
				}
				if got["len"] != "0" {
					t.Errorf("backend read %s bytes of a bodiless request", got["len"])
				}
			})
		}
	}
}

// A body of unknown length past max_body is refused with 413 over HTTP/3 too,
// and the answer reaches the client (no Connection field, which would make it
// malformed); nothing is left in body_temp.
func TestH3BodyTooLarge(t *testing.T) {
	b := startBodyServer(t)
	base, c := serveH3(t, b.srv)
	for _, path := range []string{"/cgi-bin/sum.pl", "/s/sum.php"} {
		t.Run(path, func(t *testing.T) {
			req, _ := http.NewRequest("POST", base+path, struct{ io.Reader }{bytes.NewReader(make([]byte, bodyMax+1))})
			req.ContentLength = -1
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("no answer to a body past max_body: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("status %d, want 413", resp.StatusCode)
			}
		})
	}
	if n := spoolFDs(t, b.temp); n != 0 {
		t.Errorf("%d spool files still open", n)
	}
}
