package cgi

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"gantry/internal/config"
	"gantry/internal/peertest"
	"gantry/internal/supervise"
)

// TestLimitsWithCapabilities runs a copy of this test binary as gantry-peer with
// CAP_SETUID and CAP_SETGID only, the deployment the README offers besides root,
// and has it run a script as gantry-peer2 under max_cpu. prlimit(2) on another
// user's process needs CAP_SYS_RESOURCE as well: without it, the route must fail
// to start naming what is missing, not start and fail every request; with it,
// the script runs. Root in a container that drops CAP_SYS_RESOURCE (Docker's
// default) is in the same place.
func TestLimitsWithCapabilities(t *testing.T) {
	const refused = 3 // the child's exit status for a start error naming the fix
	if os.Getenv("GANTRY_CGI_CAPS_CHILD") == "1" {
		script := os.Getenv("GANTRY_CGI_CAPS_SCRIPT")
		h, err := New(Options{Path: script, Route: "/s", User: "gantry-peer2", MaxCPU: config.Duration(5e9)},
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			fmt.Printf("start error: %v\n", err)
			if !strings.Contains(err.Error(), "CAP_SYS_RESOURCE") {
				os.Exit(1)
			}
			os.Exit(refused)
		}
		defer h.Close()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/s", nil))
		if rec.Code != http.StatusOK {
			fmt.Printf("route started, and a script under max_cpu got %d %q\n", rec.Code, rec.Body.String())
			os.Exit(1)
		}
		os.Exit(0)
	}
	peertest.Root(t, "starting gantry as a user with capabilities")
	peer, err := supervise.LookupCredential("gantry-peer")
	if err != nil {
		peertest.Missing(t, "user gantry-peer", "scripts/install-peers.sh creates it")
	}
	if _, err := supervise.LookupCredential("gantry-peer2"); err != nil {
		peertest.Missing(t, "user gantry-peer2", "scripts/install-peers.sh creates it")
	}
	dir, err := os.MkdirTemp("", "gantry-cgi-caps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin, script := filepath.Join(dir, "cgi.test"), filepath.Join(dir, "ok.sh")
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const capSetgid, capSetuid = 6, 7
	cmd := exec.Command(bin, "-test.run=^TestLimitsWithCapabilities$")
	cmd.Env = append(os.Environ(), "GANTRY_CGI_CAPS_CHILD=1", "GANTRY_CGI_CAPS_SCRIPT="+script)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: peer, AmbientCaps: []uintptr{capSetgid, capSetuid}}
	out, err := cmd.CombinedOutput()
	if got := cmd.ProcessState.ExitCode(); got != refused {
		t.Fatalf("as gantry-peer with CAP_SETUID and CAP_SETGID: exit %d (%v), want a start error naming CAP_SYS_RESOURCE\n%s", got, err, out)
	}

	// Root itself lacks CAP_SYS_RESOURCE in a container that drops it (Docker's
	// default): the same start error then; with it, the script runs.
	h, err := New(Options{Path: script, Route: "/s", User: "gantry-peer2", MaxCPU: config.Duration(5e9)},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		if hasSysResource(t) || !strings.Contains(err.Error(), "CAP_SYS_RESOURCE") {
			t.Fatalf("as root: %v", err)
		}
		return
	}
	defer h.Close()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/s", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("as root: a script under max_cpu got %d %q", rec.Code, rec.Body.String())
	}
}

// hasSysResource reports whether this process holds CAP_SYS_RESOURCE.
func hasSysResource(t *testing.T) bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<24) != 0
		}
	}
	return false
}
