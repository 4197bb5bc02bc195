package h3

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"gantry/internal/peertest"
)

// The watch closes connections that hold no request in time, never one whose
// request is in the handler: a request slower than ReadHeaderTimeout is served
// whole, and the connection serves the next one.
func TestWatchSparesLongRequests(t *testing.T) {
	cfg, pool := peertest.SelfSigned(t)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(600 * time.Millisecond)
		io.WriteString(w, "done")
	})
	s, err := Listen(context.Background(), "127.0.0.1:0", Options{Handler: slow, TLSConfig: cfg,
		ReadHeaderTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(func() { tr.Close() })
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := "https://127.0.0.1:" + strconv.Itoa(s.Port()) + "/"
	for i := range 2 {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if b := body(t, resp); b != "done" {
			t.Fatalf("request %d: body %q", i, b)
		}
	}
}
