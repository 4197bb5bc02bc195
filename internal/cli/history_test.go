package cli

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gantry/internal/config"
	"gantry/internal/peertest"
)

// TestDashboardHistorySurvivesCrash: gantry keeps the dashboard's graphs in
// dashboard-history under its state directory; killed with SIGKILL and started
// again, it shows the seconds it had graphed.
func TestDashboardHistorySurvivesCrash(t *testing.T) {
	state := t.TempDir()
	t.Setenv("STATE_DIRECTORY", state)
	site := t.TempDir()
	os.WriteFile(filepath.Join(site, "index.html"), []byte("hello\n"), 0o644)
	admin := peertest.FreeAddr(t)
	args := []string{"serve", site, "--listen", peertest.FreeAddr(t), "--admin", admin, "--access-log", "off"}

	type series struct {
		T      []float64            `json:"t"`
		Series map[string][]float64 `json:"series"`
	}
	history := func() (s series) {
		resp, err := http.Get("http://" + admin + "/api/history?range=5m")
		if err != nil {
			return s
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&s)
		return s
	}
	busy := func(s series) map[float64]float64 {
		m := map[float64]float64{}
		for i, v := range s.Series["2xx"] {
			if v > 0 {
				m[s.T[i]] = v
			}
		}
		return m
	}

	p := startGantry(t, args...)
	var before map[float64]float64
	peertest.WaitFor(t, 20*time.Second, "seconds with requests in the history", func() bool {
		if resp, err := http.Get("http://" + p.addr + "/index.html"); err == nil {
			resp.Body.Close()
		}
		before = busy(history())
		return len(before) >= 2
	})
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	if fi, err := os.Stat(filepath.Join(state, "dashboard-history")); err != nil || fi.Size() == 0 {
		t.Fatalf("no history file in the state directory: %v", err)
	}

	p = startGantry(t, args...)
	after := busy(history())
	for ts, v := range before {
		if after[ts] != v {
			t.Errorf("second %v: %v requests/s before the crash, %v after", ts, v, after[ts])
		}
	}
	if !strings.Contains(p.log(), "history restored") {
		t.Errorf("the start does not say the history was restored:\n%s", p.log())
	}
}

// TestStateStaysInTemp: a gantry started by these tests keeps its state (the
// dashboard's history, bans, certificates) under a temporary directory, never
// in the machine's /var/lib/gantry or the user's data directory.
func TestStateStaysInTemp(t *testing.T) {
	site := t.TempDir()
	os.WriteFile(filepath.Join(site, "index.html"), []byte("hello\n"), 0o644)
	p := startGantry(t, "serve", site, "--listen", peertest.FreeAddr(t), "--admin", peertest.FreeAddr(t), "--access-log", "off")
	dir := config.DefaultStateDir()
	peertest.WaitFor(t, 10*time.Second, "the history file under the state directory", func() bool {
		_, err := os.Stat(filepath.Join(dir, "dashboard-history"))
		return err == nil
	})
	if rel, err := filepath.Rel(os.TempDir(), dir); err != nil || strings.HasPrefix(rel, "..") {
		t.Errorf("the tests' gantry keeps its state in %s, outside %s\n%s", dir, os.TempDir(), p.log())
	}
}
