package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"gantry/internal/config"
	"gantry/internal/peertest"
)

// TestReloadWaitsForRequestsOnTheOldHandlers sends a request whose body is
// still arriving when a reload replaces its route's worker pool: the old pool
// must stay until the request is done, and the request must be served by it.
// Found by bench/soak.sh: the old pool was stopped at once, and the request,
// which had chosen it, got 503.
func TestReloadWaitsForRequestsOnTheOldHandlers(t *testing.T) {
	py := peertest.Python(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sum.py"), `import hashlib
def application(environ, start_response):
    n = int(environ.get("CONTENT_LENGTH") or 0)
    out = hashlib.sha256(environ["wsgi.input"].read(n)).hexdigest().encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [out]
`)
	conf := func(procs int) string {
		return fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n[[site]]\nroot=%q\n"+
			"  [[site.route]]\n  path=\"/\"\n  wsgi=\"sum:application\"\n  python=%q\n  chdir=%q\n  processes=%d\n", dir, py, dir, procs)
	}
	file := filepath.Join(dir, "gantry.toml")
	writeFile(t, file, conf(1))
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	logs := &peertest.LogBuffer{}
	srv := serveWith(t, cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	old := srv.state.Load()
	oldPool := old.sites[0].routes[0].app.(PoolReporter)

	body := strings.Repeat("gantry soak ", 20000)
	pw, done := postHalf(srv, body)
	peertest.WaitFor(t, 0, "the request on the first configuration", func() bool { return old.inUse.Load() == 1 })

	writeFile(t, file, conf(2))
	if err := srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Either the old pool is stopped (the request will fail) or the reload
	// waits for the request: then finish the body.
	peertest.WaitFor(t, 0, "the old pool stopped or the reload waiting", func() bool {
		return len(oldPool.Workers()) == 0 || strings.Contains(logs.String(), "letting requests on the replaced configuration finish")
	})
	io.WriteString(pw, body[len(body)/2:])
	pw.Close()
	a := <-done
	sum := sha256.Sum256([]byte(body))
	if a.err != nil || a.code != 200 || a.body != hex.EncodeToString(sum[:]) {
		t.Fatalf("request across the reload: %d %q %v\n%s", a.code, a.body, a.err, logs)
	}
	peertest.WaitFor(t, 0, "the old pool stopped once its request was done", func() bool { return len(oldPool.Workers()) == 0 })
}

// TestReloadTwiceWaitsForRequestsOnTheFirst sends a request whose body is still
// arriving across two reloads: the first keeps its route's pool (another route
// changes), the second replaces it. The second reload's configuration has no
// request of its own, but the pool it replaces is the one the request, counted
// on the first configuration, is using: it must stay until the request is done.
func TestReloadTwiceWaitsForRequestsOnTheFirst(t *testing.T) {
	py := peertest.Python(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sum.py"), `import hashlib
def application(environ, start_response):
    n = int(environ.get("CONTENT_LENGTH") or 0)
    out = hashlib.sha256(environ["wsgi.input"].read(n)).hexdigest().encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [out]
`)
	conf := func(procs int, extra bool) string {
		c := fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n[[site]]\nroot=%q\n"+
			"  [[site.route]]\n  path=\"/\"\n  wsgi=\"sum:application\"\n  python=%q\n  chdir=%q\n  processes=%d\n", dir, py, dir, procs)
		if extra {
			c += fmt.Sprintf("  [[site.route]]\n  path=\"/static/\"\n  static=%q\n", dir)
		}
		return c
	}
	file := filepath.Join(dir, "gantry.toml")
	writeFile(t, file, conf(1, false))
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	logs := &peertest.LogBuffer{}
	srv := serveWith(t, cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	first := srv.state.Load()
	pool := first.sites[0].routes[0].app

	body := strings.Repeat("gantry soak ", 20000)
	pw, done := postHalf(srv, body)
	peertest.WaitFor(t, 0, "the request on the first configuration", func() bool { return first.inUse.Load() == 1 })

	writeFile(t, file, conf(1, true))
	if err := srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if srv.state.Load().sites[0].routes[0].app != pool {
		t.Fatal("the first reload replaced the wsgi route's pool; the test needs it kept")
	}
	writeFile(t, file, conf(2, true))
	if err := srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	peertest.WaitFor(t, 0, "the pool stopped or the second reload waiting", func() bool {
		return len(pool.(PoolReporter).Workers()) == 0 || strings.Contains(logs.String(), "waiting for an earlier reload's requests")
	})
	io.WriteString(pw, body[len(body)/2:])
	pw.Close()
	a := <-done
	sum := sha256.Sum256([]byte(body))
	if a.err != nil || a.code != 200 || a.body != hex.EncodeToString(sum[:]) {
		t.Fatalf("request across two reloads: %d %q %v\n%s", a.code, a.body, a.err, logs)
	}
	peertest.WaitFor(t, 0, "the replaced pool stopped once the request was done", func() bool { return len(pool.(PoolReporter).Workers()) == 0 })
}

type postAnswer struct {
	code int
	body string
	err  error
}

// postHalf starts a POST of body to srv and sends its first half: the request
// is in flight until the test writes the rest to pw and closes it.
func postHalf(srv *Server, body string) (*io.PipeWriter, <-chan postAnswer) {
	pr, pw := io.Pipe()
	done := make(chan postAnswer, 1)
	go func() {
		resp, err := http.Post("http://"+srv.Addrs()[0].String()+"/", "text/plain", pr)
		if err != nil {
			done <- postAnswer{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- postAnswer{code: resp.StatusCode, body: string(b)}
	}()
	io.WriteString(pw, body[:len(body)/2])
	return pw, done
}
