package http1

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// addrHandler answers with the local address in the request's context, before
// and after WatchClient, as gateways read it for SERVER_ADDR and SERVER_PORT.
type addrHandler struct{}

func (addrHandler) ServeFast(w *ResponseWriter, r *http.Request) bool {
	la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	wa, _ := w.WatchClient(r).Context().Value(http.LocalAddrContextKey).(net.Addr)
	io.WriteString(w, addrString(la)+" "+addrString(wa))
	return true
}

func addrString(a net.Addr) string {
	if a == nil {
		return "none"
	}
	return a.String()
}

// A fast request's context carries the connection's local address as
// net/http's does; without it PHP and WSGI apps got empty SERVER_ADDR and
// SERVER_PORT on the fast path only.
func TestFastRequestContextHasLocalAddr(t *testing.T) {
	s := &Server{Handler: addrHandler{}, Fallback: &http.Server{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	c := dial(t, ln.Addr().String())
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.0\r\n\r\n")
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	want := ln.Addr().String() + " " + ln.Addr().String()
	if n := strings.Count(string(got), "\r\n\r\n"+want); n != 2 {
		t.Errorf("answers %q: want the body %q twice", got, want)
	}
}
