package errpage

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"gantry/internal/config"
	"gantry/internal/peertest"
)

// A route whose error answer streams a long or endless body (a proxied 404 that is
// an event stream, a CGI script that keeps printing) still gets its page to the
// client at once, and is told, by a failed write, that the rest is not wanted:
// the page never waits behind a body that nobody will see.
func TestPageNotHeldBehindAStreamedBody(t *testing.T) {
	root := t.TempDir()
	const page = "<p>the site's 404 page</p>\n"
	if err := os.WriteFile(filepath.Join(root, "404.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	var stopped atomic.Bool
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer stopped.Store(true)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusNotFound)
		chunk := make([]byte, 4096)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
		}
	})
	h, err := wrap(&Options{pages: map[int]string{404: "404.html"}},
		config.Env{Site: &config.Site{Root: root, Symlinks: config.SymlinksInside}}, route)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(srv.CloseClientConnections) // first: a held answer would keep Close waiting

	type answer struct {
		status int
		body   string
		err    error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/events")
		if err != nil {
			got <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- answer{resp.StatusCode, string(b), err}
	}()
	var a answer
	peertest.WaitFor(t, 10*time.Second, "the error page to arrive", func() bool {
		select {
		case a = <-got:
			return true
		default:
			return false
		}
	})
	if a.err != nil || a.status != 404 || a.body != page {
		t.Fatalf("got %d %q (%v), want 404 with the page", a.status, a.body, a.err)
	}
	peertest.WaitFor(t, 10*time.Second, "the route to stop writing a body nobody sees", stopped.Load)
}
