//go:build python

package cli

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gantry/internal/peertest"
)

func init() { buildTags = "python" }

// An embedded WSGI app in the real binary: gantry keeps its signals (Python
// installs no handlers), SIGHUP loads the new code, SIGTERM ends gantry cleanly,
// and `gantry version` names the libpython linked.
func TestEmbeddedWSGISignals(t *testing.T) {
	python := peertest.Python(t)
	dir := t.TempDir()
	app := filepath.Join(dir, "live.py")
	clock := time.Now()
	write := func(v string) {
		os.WriteFile(app, []byte(fmt.Sprintf("def application(e, sr):\n    sr('200 OK', [('Content-Type', 'text/plain')])\n    return [b%q]\n", v)), 0o644)
		clock = clock.Add(time.Second) // a new .pyc, whatever the edit's size
		os.Chtimes(app, clock, clock)
	}
	write("v1")
	conf := filepath.Join(dir, "gantry.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("[server]\nlisten=[%q]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n[[site]]\n[[site.route]]\npath=\"/\"\nwsgi=\"live:application\"\nchdir=%q\npython=%q\nmode=\"embedded\"\n",
		peertest.FreeAddr(t), dir, python)), 0o644)
	p := startGantry(t, "serve", "-c", conf)
	body := func() string {
		resp, err := http.Get("http://" + p.addr + "/")
		if err != nil {
			t.Fatalf("%v\ngantry's log:\n%s", err, p.log())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if b := body(); b != "v1" {
		t.Fatalf("got %q\n%s", b, p.log())
	}
	write("v2")
	p.cmd.Process.Signal(syscall.SIGHUP)
	peertest.WaitFor(t, 20*time.Second, "new code after SIGHUP", func() bool { return body() == "v2" })
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, p.log())
	}
	out, err := exec.Command(gantryBin, "version").Output()
	if err != nil || !strings.Contains(string(out), "python: libpython 3.") {
		t.Errorf("gantry version: %q, %v", out, err)
	}
}
