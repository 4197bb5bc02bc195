package dashboard

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
	"gantry/internal/server"
)

// TestWorkerPools serves a WSGI app from two real Python workers and finds them in
// /api/status and /metrics.
func TestWorkerPools(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Python workers")
	}
	py := peertest.Python(t)
	app := t.TempDir()
	os.WriteFile(filepath.Join(app, "hello.py"), []byte(`def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from wsgi\n"]
`), 0o644)
	g := startGantry(t, setup{extra: fmt.Sprintf("\n[[site.route]]\npath = \"/app/\"\nwsgi = \"hello:application\"\nchdir = %q\npython = %q\nprocesses = 2\n", app, py)})
	c := client()
	if resp, body := do(t, c, "GET", g.web+"/app/", nil, nil); resp.StatusCode != 200 || body != "hello from wsgi\n" {
		t.Fatalf("wsgi: %s %q", resp.Status, body)
	}
	var st server.Status
	getJSON(t, c, g.admin+"/api/status", &st)
	if len(st.Pools) != 1 || st.Pools[0].Route != "/app/" || st.Pools[0].Kind != "wsgi" || len(st.Pools[0].Workers) != 2 {
		t.Fatalf("pools = %+v", st.Pools)
	}
	for _, w := range st.Pools[0].Workers {
		if w.PID <= 0 || w.State != "ready" || w.Started.IsZero() {
			t.Fatalf("worker = %+v", w)
		}
	}
	_, metrics := do(t, c, "GET", g.admin+"/metrics", nil, nil)
	for _, want := range []string{
		`gantry_workers{kind="wsgi",route="/app/",site="default",state="ready"} 2`,
		`gantry_worker_restarts_total{kind="wsgi",route="/app/",site="default"} 0`,
		`gantry_http_requests_total{code="200",route="/app/",site="default"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestLimitKillsMetric: a worker that max_memory ended is counted in /metrics.
func TestLimitKillsMetric(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Python workers")
	}
	py := peertest.Python(t)
	app := t.TempDir()
	os.WriteFile(filepath.Join(app, "hog.py"), []byte(`def application(environ, start_response):
    held = bytearray(1 << 30)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"held"]
`), 0o644)
	g := startGantry(t, setup{extra: fmt.Sprintf("\n[[site.route]]\npath = \"/hog/\"\nwsgi = \"hog:application\"\nchdir = %q\npython = %q\nprocesses = 1\nmax_memory = \"512MB\"\n", app, py)})
	c := client()
	if resp, _ := do(t, c, "GET", g.web+"/hog/", nil, nil); resp.StatusCode < 500 {
		t.Fatalf("1GB past a 512MB max_memory: %s", resp.Status)
	}
	want := `gantry_limit_kills_total{kind="wsgi",limit="max_memory",route="/hog/",site="default"} 1`
	peertest.WaitFor(t, 10*time.Second, "the kill in /metrics", func() bool {
		_, metrics := do(t, c, "GET", g.admin+"/metrics", nil, nil)
		return strings.Contains(metrics, want)
	})
}
