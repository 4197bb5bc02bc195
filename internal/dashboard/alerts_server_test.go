package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/internal/peertest"
	"gantry/internal/server"
)

// wsgiRoute is the config of a WSGI route at /app/ serving app.py's application.
func wsgiRoute(t *testing.T, processes int, app string) string {
	return wsgiRouteAt(t, "/app/", processes, app)
}

func wsgiRouteAt(t *testing.T, path string, processes int, app string) string {
	py := peertest.Python(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("\n[[site.route]]\npath = %q\nwsgi = \"app:application\"\nchdir = %q\npython = %q\nprocesses = %d\nthreads = 1\n", path, dir, py, processes)
}

func alertsOf(t *testing.T, g *gantry, kind string) []Alert {
	var out []Alert
	for _, a := range g.dash.currentAlerts() {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// waitPolls waits until the sampler has read the pools twice more.
func waitPolls(t *testing.T, g *gantry) {
	n := len(g.dash.hist.list())
	peertest.WaitFor(t, 20*time.Second, "two more reads of the pools", func() bool { return len(g.dash.hist.list()) >= n+11 })
}

// TestCrashLoopAlert: a WSGI app that kills its worker on every request raises the
// crash-loop alert, naming the route, the exit status and the worker's last
// stderr line, and linking to the pool.
func TestCrashLoopAlert(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Python workers")
	}
	g := startGantry(t, setup{extra: wsgiRoute(t, 1, `import os, sys
def application(environ, start_response):
    sys.stderr.write("RuntimeError: the database is gone\n")
    sys.stderr.flush()
    os._exit(3)
`)})
	c := client()
	peertest.WaitFor(t, 60*time.Second, "a crash-loop alert for /app/", func() bool {
		if resp, _ := do(t, c, "GET", g.web+"/app/", nil, nil); resp.StatusCode < 500 {
			t.Fatalf("crashing app answered %s", resp.Status)
		}
		return len(alertsOf(t, g, "crash_loop")) > 0
	})
	var alerts []Alert
	getJSON(t, c, g.admin+"/api/alerts", &alerts)
	var a *Alert
	for i := range alerts {
		if alerts[i].Kind == "crash_loop" {
			a = &alerts[i]
		}
	}
	if a == nil {
		t.Fatalf("/api/alerts %+v lacks the crash loop", alerts)
	}
	if !strings.Contains(a.Message, "/app/") || !strings.Contains(a.Message, "exit status 3") ||
		a.Detail != "RuntimeError: the database is gone" || a.Pool != "default /app/" {
		t.Errorf("alert %+v: want the route, exit status 3, the stderr line and the pool", a)
	}
	var st server.Status
	getJSON(t, c, g.admin+"/api/status", &st)
	if len(st.Pools) != 1 || st.Pools[0].Crashes < 3 || st.Pools[0].LastCrash == nil || st.Pools[0].LastCrash.Status != "exit status 3" {
		t.Errorf("pool status %+v, want its crashes counted", st.Pools)
	}
}

// TestReloadsRaiseNoCrashLoop: reloads restart every worker; that is planned and
// must not read as a crash loop (it did: two reloads of two workers were four
// "restarts").
func TestReloadsRaiseNoCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Python workers")
	}
	g := startGantry(t, setup{extra: wsgiRoute(t, 2, `def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]
`)})
	waitPolls(t, g)
	for range 3 {
		if err := g.srv.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	st := g.srv.Status()
	if len(st.Pools) != 1 || st.Pools[0].Workers[0].Restarts < 3 {
		t.Fatalf("pools %+v: want the workers restarted by the reloads", st.Pools)
	}
	waitPolls(t, g)
	if a := g.dash.currentAlerts(); len(a) != 0 || g.srv.Status().Pools[0].Crashes != 0 {
		t.Fatalf("after reloads: alerts %+v, crashes %d; want none", a, g.srv.Status().Pools[0].Crashes)
	}
}

// TestSaturatedAlert: one worker held by a slow request with others queued
// behind it raises the saturation alert; it clears when the queue drains.
func TestSaturatedAlert(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Python workers")
	}
	gate := filepath.Join(t.TempDir(), "go")
	g := startGantry(t, setup{extra: wsgiRoute(t, 1, fmt.Sprintf(`import os, time
def application(environ, start_response):
    while not os.path.exists(%q):
        time.sleep(0.05)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"done\n"]
`, gate))})
	c := client()
	var wg sync.WaitGroup
	statuses := make(chan int, 3)
	for range 3 {
		wg.Go(func() {
			resp, err := c.Get(g.web + "/app/")
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	t.Cleanup(func() { os.WriteFile(gate, nil, 0o644); wg.Wait() })
	peertest.WaitFor(t, 30*time.Second, "a saturation alert", func() bool { return len(alertsOf(t, g, "saturated")) > 0 })
	a := alertsOf(t, g, "saturated")[0]
	if !strings.Contains(a.Message, "the wsgi worker of /app/ is busy (1 request in flight)") || !strings.Contains(a.Message, "2 more waiting") || a.Pool != "default /app/" {
		t.Errorf("alert %+v", a)
	}
	os.WriteFile(gate, nil, 0o644)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Errorf("a queued request ended %d, want 200", s)
		}
	}
	peertest.WaitFor(t, 30*time.Second, "the saturation alert gone", func() bool { return len(alertsOf(t, g, "saturated")) == 0 })
}

// TestCertificateAlert: a certificate that cannot be loaded raises an alert with
// the error; once fixed and reloaded, the alert goes.
func TestCertificateAlert(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	cert, key := filepath.Join(dir, "bad.pem"), filepath.Join(dir, "bad.key")
	writePair(t, cert, key, "bad.test", now.Add(-time.Hour), now.Add(60*24*time.Hour))
	g := startGantry(t, setup{tls: true, extra: fmt.Sprintf("\n[[site]]\nhosts = [\"bad.test\"]\nroot = %q\ntls_cert = %q\ntls_key = %q\n", dir, cert, key)})
	waitPolls(t, g)
	if a := alertsOf(t, g, "certificate"); len(a) != 0 {
		t.Fatalf("alerts for a good certificate: %+v", a)
	}
	writePair(t, cert, "", "bad.test", now.Add(-time.Hour), now.Add(60*24*time.Hour)) // the key no longer matches
	if err := g.srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	peertest.WaitFor(t, 20*time.Second, "a certificate alert", func() bool { return len(alertsOf(t, g, "certificate")) > 0 })
	a := alertsOf(t, g, "certificate")[0]
	if !strings.Contains(a.Message, "bad.test (own)") || !strings.Contains(a.Message, "expires in 59 days") || !strings.Contains(a.Detail, "private key does not match") {
		t.Errorf("alert %+v", a)
	}
	writePair(t, cert, key, "bad.test", now.Add(-time.Hour), now.Add(60*24*time.Hour))
	if err := g.srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	peertest.WaitFor(t, 20*time.Second, "the certificate alert gone", func() bool { return len(alertsOf(t, g, "certificate")) == 0 })
}
