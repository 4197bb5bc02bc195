package cgi

import (
	"strings"
	"testing"

	"gantry/internal/config"
	"gantry/internal/supervise"
)

// TestMaxCPU runs a script that spins forever under max_cpu = 1s and a timeout
// far longer: the limit must stop it, the client get 502, and the log and the
// route's report say why.
func TestMaxCPU(t *testing.T) {
	f := newFixture(t, setupOpts{opts: func(o *Options) {
		o.MaxCPU = config.Duration(1e9)
		o.Timeout = config.Duration(600e9)
	}})
	resp, body := f.get(t, "/cgi-bin/spin.sh")
	if resp.StatusCode != 502 {
		t.Fatalf("spinning script: %d %q, want 502", resp.StatusCode, body)
	}
	if got := f.h.LimitKills()[supervise.LimitCPU]; got != 1 {
		t.Errorf("max_cpu kills = %d, want 1", got)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "script stopped by its max_cpu limit") || !strings.Contains(logs, "CPU time limit exceeded") {
		t.Errorf("log does not name the limit:\n%s", logs)
	}
	if resp, body := f.get(t, "/cgi-bin/env.sh"); resp.StatusCode != 200 {
		t.Errorf("a script after it: %d %q", resp.StatusCode, body)
	}
}
