package cgi

import (
	"io"
	"strings"
	"sync"
	"testing"

	"gantry/internal/config"
	"gantry/internal/supervise"
)

// TestMaxCPU runs a script that spins forever under max_cpu = 1s and a timeout
// far longer: the limit must stop it, the client get 502, and the log and the
// route's report say why.
// A script that ignores SIGXCPU is killed a second later (the hard limit's
// SIGKILL), and that is max_cpu's doing too.
func TestMaxCPU(t *testing.T) {
	for script, status := range map[string]string{"spin.sh": "CPU time limit exceeded", "spin-ignore.sh": "killed"} {
		t.Run(script, func(t *testing.T) {
			f := newFixture(t, setupOpts{opts: func(o *Options) {
				o.MaxCPU = config.Duration(1e9)
				o.Timeout = config.Duration(600e9)
			}})
			resp, body := f.get(t, "/cgi-bin/"+script)
			if resp.StatusCode != 502 {
				t.Fatalf("spinning script: %d %q, want 502", resp.StatusCode, body)
			}
			if got := f.h.LimitKills()[supervise.LimitCPU]; got != 1 {
				t.Errorf("max_cpu kills = %d, want 1", got)
			}
			if logs := f.logs.String(); !strings.Contains(logs, "script stopped by its max_cpu limit") || !strings.Contains(logs, status) {
				t.Errorf("log does not name the limit:\n%s", logs)
			}
			if resp, body := f.get(t, "/cgi-bin/env.sh"); resp.StatusCode != 200 {
				t.Errorf("a script after it: %d %q", resp.StatusCode, body)
			}
		})
	}
}

// TestMaxCPUBeforeTheScriptRuns runs many scripts at once under max_cpu, each
// reporting the limit of a process it forks at its very start: every one must
// have it. A limit set on the script after it started leaves whatever it forked
// in the meantime unlimited, and on a busy machine that is most of them.
func TestMaxCPUBeforeTheScriptRuns(t *testing.T) {
	f := newFixture(t, setupOpts{opts: func(o *Options) {
		o.MaxCPU = config.Duration(5e9)
		o.MaxProcesses = 16
	}})
	const want = "5 6 seconds" // soft limit, then the hard one a second later
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				resp, err := f.srv.Client().Get(f.srv.URL + "/cgi-bin/limits.sh")
				if err != nil {
					t.Error(err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || !strings.Contains(strings.Join(strings.Fields(string(body)), " "), want) {
					t.Errorf("a process the script forked: %d %q %v; want max cpu time %s", resp.StatusCode, body, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
