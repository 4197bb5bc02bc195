package server

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"gantry/internal/peertest"
	"gantry/internal/supervise"
)

// TestLimitKillsInStatus checks that what max_memory and max_cpu ended shows in
// the pool report the dashboard and /api/status read, for a worker pool and for
// a CGI route.
func TestLimitKillsInStatus(t *testing.T) {
	py := peertest.Python(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "hog.py"), `def application(environ, start_response):
    held = bytearray(1 << 30)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"held"]
`)
	cgiDir := filepath.Join(dir, "cgi-bin")
	writeFile(t, filepath.Join(cgiDir, "spin.sh"), "#!/bin/sh\nwhile :; do :; done\n")
	if err := os.Chmod(filepath.Join(cgiDir, "spin.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv, base, _ := startServer(t, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n"+
		"[[site]]\nroot=%q\n"+
		"  [[site.route]]\n  path=\"/cgi-bin/\"\n  cgi=%q\n  max_cpu=\"1s\"\n"+
		"  [[site.route]]\n  path=\"/hog/\"\n  wsgi=\"hog:application\"\n  python=%q\n  chdir=%q\n  processes=1\n  max_memory=\"512MB\"\n",
		dir, cgiDir, py, dir))
	if code, body := get(t, base+"/hog/", ""); code < 500 {
		t.Fatalf("hog: %d %q", code, body)
	}
	if code, body := get(t, base+"/cgi-bin/spin.sh", ""); code != 502 {
		t.Fatalf("spin: %d %q", code, body)
	}
	kills := func(route, limit string) uint64 {
		for _, p := range srv.Status().Pools {
			if p.Route == route {
				return p.LimitKills[limit]
			}
		}
		return 0
	}
	peertest.WaitFor(t, 0, "the worker's max_memory kill in the status", func() bool { return kills("/hog/", supervise.LimitMemory) == 1 })
	if got := kills("/cgi-bin/", supervise.LimitCPU); got != 1 {
		t.Errorf("CGI route's max_cpu kills in the status = %d, want 1", got)
	}
}
