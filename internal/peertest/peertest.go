// Package peertest finds the real peers that integration tests talk to (php-fpm,
// python3 with Django or Flask, Chromium, nmap, ...). When a peer is missing the test
// is skipped with a one-line reason, unless GANTRY_REQUIRE_PEERS=1, when it fails:
// CI sets that so that no integration test can silently skip.
package peertest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Required reports whether missing peers fail tests instead of skipping them.
func Required() bool { return os.Getenv("GANTRY_REQUIRE_PEERS") == "1" }

// Missing skips or fails t because the peer named what is unavailable.
func Missing(t testing.TB, what, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("peer %s unavailable (GANTRY_REQUIRE_PEERS=1): %s", what, why)
	}
	t.Skipf("peer %s unavailable: %s (scripts/install-peers.sh installs it)", what, why)
}

// Binary returns the path of the first of names found on PATH or as an absolute path.
func Binary(t testing.TB, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	Missing(t, names[0], "not found on PATH")
	return ""
}

// Python returns a Python 3 interpreter that can import every module named. Debian's
// /usr/bin/python3 is tried first: it is the one that has python3-django and
// python3-flask, while the python3 first on PATH on these machines may not.
func Python(t testing.TB, modules ...string) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	var lastErr string
	for _, py := range candidates {
		if _, err := os.Stat(py); err != nil {
			continue
		}
		code := "import sys"
		for _, m := range modules {
			code += "; import " + m
		}
		out, err := exec.Command(py, "-c", code).CombinedOutput()
		if err == nil {
			return py
		}
		lastErr = strings.TrimSpace(string(out))
	}
	Missing(t, "python3 with "+strings.Join(modules, ", "), lastErr)
	return ""
}

// LogBuffer collects what a component under test logs (or a child process
// writes), safe for the writer and the test's assertions to use at once.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// WaitFor polls cond until it holds, failing t with what when it has not held
// within d (default 10s when d is 0). It is the one wait-for helper of the tests:
// they wait for a condition, never for a fixed time.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if d == 0 {
		d = 10 * time.Second
	}
	deadline := time.Now().Add(d)
	for delay := time.Millisecond; !cond(); delay = min(2*delay, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(delay)
	}
}

// PHPFPM runs a real php-fpm (pm = static, 2 children) with a private config and
// socket in a temp dir, stopped at the end of the test, and returns its address
// ("unix:/path"). extra is appended to the pool section.
func PHPFPM(t testing.TB, extra string) string {
	t.Helper()
	bin := Binary(t, "php-fpm8.2", "php-fpm", "/usr/sbin/php-fpm8.2")
	dir := t.TempDir()
	sock := filepath.Join(dir, "fpm.sock")
	conf := fmt.Sprintf("[global]\nerror_log = %[1]s/fpm-error.log\ndaemonize = no\npid = %[1]s/fpm.pid\n"+
		"[www]\nlisten = %[2]s\npm = static\npm.max_children = 2\n%[3]s\n", dir, sock, extra)
	if err := os.WriteFile(filepath.Join(dir, "fpm.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-F", "-y", filepath.Join(dir, "fpm.conf")}
	if os.Geteuid() == 0 {
		args = append(args, "-R")
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting php-fpm: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "fpm-error.log"))
			t.Fatalf("php-fpm never accepted connections on %s: %v\n%s", sock, err, log)
		}
	}
	return "unix:" + sock
}

// OpenFDs counts the test process's open descriptors, for tests that show a
// component leaks none.
func OpenFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		Missing(t, "/proc/self/fd", err.Error())
	}
	return len(ents)
}

// Entries counts the names in dir, for tests that show a component leaves no file.
func Entries(t testing.TB, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// Root skips or fails t (as Missing does) unless the tests run as root, which
// CI does: why says what needs it.
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root", why)
	}
}

// RawUpstream is an HTTP upstream that answers each connection with handle, which
// writes whatever bytes a test needs (a short body, a bad framing); it returns
// the upstream's URL.
func RawUpstream(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// GroupMember returns a user that /etc/group lists as a member of a group other
// than its primary one, so that its initgroups(3) list is longer than one group
// (what tests of dropping to a user need to see the supplementary groups); ""
// when the system has none (scripts/install-peers.sh makes one, gantry-peer).
func GroupMember() string {
	data, err := os.ReadFile("/etc/group")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) != 4 || f[3] == "" {
			continue
		}
		for _, m := range strings.Split(f[3], ",") {
			if u, err := user.Lookup(m); err == nil && u.Gid != f[2] {
				return m
			}
		}
	}
	return ""
}
