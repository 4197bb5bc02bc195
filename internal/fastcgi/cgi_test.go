package fastcgi

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"gantry/internal/peertest"
	"gantry/internal/supervise"
)

func TestSpawnedPHPCGI(t *testing.T) {
	bin := peertest.Binary(t, "php-cgi", "php-cgi8.2")
	srv, h, logs := serve(t, Options{Command: []string{bin}, Processes: 2, MaxRequests: 4, Route: "*.php"}, nil)
	workers := h.Workers()
	if len(workers) != 2 {
		t.Fatalf("%d workers, want 2", len(workers))
	}
	for _, w := range workers {
		if w.State != supervise.StateReady || w.PID == 0 {
			t.Fatalf("worker %+v not ready", w)
		}
	}

	t.Run("serves PHP", func(t *testing.T) {
		resp, body := get(t, srv.URL+"/env.php/x?a=b")
		env := parseEnv(body)
		if resp.StatusCode != 200 || env["SCRIPT_NAME"] != "/env.php" || env["PATH_INFO"] != "/x" || env["QUERY_STRING"] != "a=b" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
	t.Run("a killed process is replaced and requests keep working", func(t *testing.T) {
		victim := h.Workers()[0].PID
		syscall.Kill(victim, syscall.SIGKILL)
		for i := 0; i < 6; i++ {
			if resp, body := get(t, srv.URL+"/hello.php"); resp.StatusCode != 200 {
				t.Fatalf("request %d after the kill: %d %q", i, resp.StatusCode, body)
			}
		}
		peertest.WaitFor(t, 0, "a replacement process", func() bool {
			ws := h.Workers()
			ready := 0
			for _, w := range ws {
				if w.PID == victim {
					return false
				}
				if w.State == supervise.StateReady {
					ready++
				}
			}
			return ready == 2
		})
	})
	t.Run("max_requests recycles processes", func(t *testing.T) {
		// The process serving now takes requests until its replacement is
		// ready (at least its limit, drawn from [4, 5]), then another serves.
		// It polls rather than counts: how many requests pass before the
		// replacement is ready depends on the machine's load.
		served := map[string]int{}
		peertest.WaitFor(t, 0, "a second process serving", func() bool {
			resp, body := get(t, srv.URL+"/pid.php")
			if resp.StatusCode != 200 {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
			served[body]++
			return len(served) >= 2
		})
		if !strings.Contains(logs.String(), "worker reached max_requests; recycling") {
			t.Errorf("no recycling in the log:\n%s", logs)
		}
	})
	t.Run("shutdown stops every process", func(t *testing.T) {
		var pids []int
		for _, w := range h.Workers() {
			pids = append(pids, w.PID)
		}
		if err := h.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, 0); err == nil {
				t.Errorf("process %d still running after Shutdown", pid)
			}
		}
	})
}

func TestDetectPHP(t *testing.T) {
	dir := t.TempDir()
	old := fpmSocketGlob
	t.Cleanup(func() { fpmSocketGlob = old })
	fpmSocketGlob = filepath.Join(dir, "php*-fpm.sock")

	// A stale socket file nobody listens on is skipped.
	stale := filepath.Join(dir, "php9.9-fpm.sock")
	if ln, err := net.Listen("unix", stale); err == nil {
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		ln.Close()
	}
	live := filepath.Join(dir, "php8.2-fpm.sock")
	ln, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr, cmd, err := DetectPHP()
	if err != nil || addr != "unix:"+live || cmd != nil {
		t.Fatalf("DetectPHP = %q %q %v, want the live socket", addr, cmd, err)
	}

	ln.Close()
	os.Remove(live)
	addr, cmd, err = DetectPHP()
	if _, lookErr := lookPHPCGI(); lookErr != nil {
		if err == nil || !strings.Contains(err.Error(), "php-cgi") {
			t.Fatalf("without PHP: %q %q %v", addr, cmd, err)
		}
		return
	}
	if err != nil || addr != "" || len(cmd) != 1 || !strings.Contains(filepath.Base(cmd[0]), "php-cgi") {
		t.Fatalf("DetectPHP = %q %q %v, want php-cgi", addr, cmd, err)
	}
}

// TestSpawnedPHPCGIUser: user runs the spawned processes as that user, and gantry
// still reaches their sockets.
func TestSpawnedPHPCGIUser(t *testing.T) {
	peertest.Root(t, "switching users needs root")
	bin := peertest.Binary(t, "php-cgi", "php-cgi8.2")
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	// A document root the user can read: t.TempDir and its parent are 0700.
	root := t.TempDir()
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "uid.php"), []byte("<?php echo posix_geteuid(), ' ', posix_getegid();\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, h, logs := serve(t, Options{Command: []string{bin}, Processes: 1, Route: "*.php", Root: root, User: "nobody"}, nil)

	resp, body := get(t, srv.URL+"/uid.php")
	if want := nobody.Uid + " " + nobody.Gid; resp.StatusCode != 200 || body != want {
		t.Fatalf("script says %d %q, want uid and gid %q\n%s", resp.StatusCode, body, want, logs)
	}
	pid := h.Workers()[0].PID
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The groups are nobody's whole list as initgroups(3) builds it (id(1)
	// reports the same), none of gantry's own.
	idG, err := exec.Command("id", "-G", "nobody").Output()
	if err != nil {
		t.Fatal(err)
	}
	wantGroups := strings.Fields(string(idG))
	slices.Sort(wantGroups)
	var sawUid, sawGroups bool
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 5 && f[0] == "Uid:":
			sawUid = true
			for _, id := range f[1:] { // real, effective, saved, filesystem
				if id != nobody.Uid {
					t.Errorf("process %d: %q, want every uid %s", pid, line, nobody.Uid)
				}
			}
		case len(f) >= 1 && f[0] == "Groups:":
			sawGroups = true
			if got := slices.Sorted(slices.Values(f[1:])); !slices.Equal(got, wantGroups) {
				t.Errorf("process %d: %q, want nobody's groups %v", pid, line, wantGroups)
			}
		}
	}
	if !sawUid || !sawGroups {
		t.Fatalf("no Uid or Groups line in /proc/%d/status", pid)
	}
}

// TestClientGoneBeforeDialKeepsPHPCGI: a client that leaves before its request
// reaches php-cgi (the dial sees a cancelled context) must not get the healthy
// process killed and replaced.
func TestClientGoneBeforeDialKeepsPHPCGI(t *testing.T) {
	bin := peertest.Binary(t, "php-cgi", "php-cgi8.2")
	srv, h, _ := serve(t, Options{Command: []string{bin}, Processes: 1, Route: "*.php"}, nil)
	old := h.Workers()[0].PID
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/env.php", nil).WithContext(ctx))
	if ws := h.Workers(); len(ws) != 1 || ws[0].PID != old || ws[0].State != supervise.StateReady {
		t.Errorf("workers after a client left before the dial: %+v, want pid %d still ready", ws, old)
	}
	if resp, _ := get(t, srv.URL+"/env.php"); resp.StatusCode != 200 {
		t.Errorf("next request: %d, want 200", resp.StatusCode)
	}
}
