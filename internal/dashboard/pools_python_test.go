//go:build python

package dashboard

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gantry/internal/peertest"
	"gantry/internal/server"
)

// TestEmbeddedWorkerPool: an embedded WSGI app's threads show in /api/status and
// /metrics like a daemon pool's workers, with the requests that failed in the app.
func TestEmbeddedWorkerPool(t *testing.T) {
	py := peertest.Python(t)
	app := t.TempDir()
	os.WriteFile(filepath.Join(app, "hello.py"), []byte(`def application(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from embedded wsgi\n"]
`), 0o644)
	g := startGantry(t, setup{extra: fmt.Sprintf("\n[[site.route]]\npath = \"/app/\"\nwsgi = \"hello:application\"\nchdir = %q\npython = %q\nmode = \"embedded\"\nthreads = 3\n", app, py)})
	c := client()
	if resp, body := do(t, c, "GET", g.web+"/app/", nil, nil); resp.StatusCode != 200 || body != "hello from embedded wsgi\n" {
		t.Fatalf("wsgi: %s %q", resp.Status, body)
	}
	if resp, _ := do(t, c, "GET", g.web+"/app/boom", nil, nil); resp.StatusCode != 500 {
		t.Fatalf("failing app: %s", resp.Status)
	}
	var st server.Status
	getJSON(t, c, g.admin+"/api/status", &st)
	if len(st.Pools) != 1 || st.Pools[0].Route != "/app/" || len(st.Pools[0].Workers) != 3 {
		t.Fatalf("pools = %+v", st.Pools)
	}
	var reqs, errs uint64
	for _, w := range st.Pools[0].Workers {
		if w.PID <= 0 || w.State != "ready" || w.Started.IsZero() {
			t.Errorf("thread = %+v", w)
		}
		reqs += w.Requests
		errs += w.Errors
	}
	if reqs != 2 || errs != 1 || st.Pools[0].Workers[0].RSSKB <= 0 {
		t.Errorf("threads %+v: want 2 requests, 1 error and gantry's RSS", st.Pools[0].Workers)
	}
	_, metrics := do(t, c, "GET", g.admin+"/metrics", nil, nil)
	for _, want := range []string{
		`gantry_workers{kind="wsgi",route="/app/",site="default",state="ready"} 3`,
		`gantry_worker_requests_total{kind="wsgi",route="/app/",site="default"} 2`,
		`gantry_worker_errors_total{kind="wsgi",route="/app/",site="default"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
