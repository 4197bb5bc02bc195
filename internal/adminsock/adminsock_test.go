package adminsock

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gantry/internal/peertest"
)

const nobody = 65534

// shortDir is a fresh directory with a short path (a socket path is limited to
// 108 bytes), removed after the test.
func shortDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "gsock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func listen(t *testing.T, path string, refused func(int)) net.Listener {
	t.Helper()
	ln, err := Listen(path, os.Geteuid(), os.Getegid(), refused)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestListen(t *testing.T) {
	path := filepath.Join(shortDir(t), "run", Name)
	ln := listen(t, path, nil)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode: %v", di.Mode())
	}
	// a second gantry on the same socket is told, and the first keeps it
	if _, err := Listen(path, os.Geteuid(), os.Getegid(), nil); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Listen on a live socket: %v, want ErrInUse", err)
	}
	// the listener closing removes the file
	ln.Close()
	if _, err := os.Lstat(path); err == nil {
		t.Fatal("socket file left after Close")
	}
}

// A gantry killed with SIGKILL leaves its socket file behind: the next one
// replaces it.
func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "run", Name)
	os.MkdirAll(filepath.Dir(path), 0o700)
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close() // the file stays, nobody answers
	ln := listen(t, path, nil)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("new"))
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial the replaced socket: %v", err)
	}
	defer c.Close()
	if b, _ := io.ReadAll(c); string(b) != "new" {
		t.Fatalf("read %q from the replaced socket", b)
	}
}

// The client uses only a socket of its own user (or any as root): another
// user's socket would be whoever made it answering.
func TestUsable(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, "run", Name)
	listen(t, path, nil)
	me := os.Geteuid()
	other := me + 1
	if other == 0 {
		other = 2
	}
	for _, tc := range []struct {
		name    string
		path    string
		uid     int
		use     bool
		wantErr string
	}{
		{"own socket", path, me, true, ""},
		{"root may use any", path, 0, true, ""},
		{"another uid's socket is refused", path, other, false, "owned by uid"},
		{"no socket: fall back", filepath.Join(dir, "none.sock"), me, false, ""},
		{"not a socket", dir, me, false, "not a socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.uid == 0 && me != 0 {
				peertest.Root(t, "the root case needs the socket owned by someone else")
			}
			use, err := Usable(tc.path, tc.uid)
			if use != tc.use || (tc.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Usable = %v, %v; want %v, error containing %q", use, err, tc.use, tc.wantErr)
			}
		})
	}
}

// A runtime directory some other user made (a squatter in /tmp) is refused.
func TestListenRefusesForeignDirectory(t *testing.T) {
	peertest.Root(t, "making a directory owned by another uid needs root")
	dir := filepath.Join(shortDir(t), "run")
	os.Mkdir(dir, 0o700)
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	_, err := Listen(filepath.Join(dir, Name), 0, 0, nil)
	if err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("Listen in a directory of uid %d: %v", nobody, err)
	}
}

// A peer running as another user is refused by its SO_PEERCRED uid, even when
// the file permissions let it connect.
func TestPeerOfAnotherUserRefused(t *testing.T) {
	peertest.Root(t, "running a peer as another uid needs root")
	dir := shortDir(t)
	path := filepath.Join(dir, "run", Name)
	var refused atomic.Int64
	refused.Store(-1)
	ln := listen(t, path, func(uid int) { refused.Store(int64(uid)) })
	accepted := make(chan struct{}, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	// let nobody reach the socket file: only the credential check stands
	for _, p := range []string{dir, filepath.Dir(path)} {
		os.Chmod(p, 0o711)
	}
	os.Chmod(path, 0o666)
	// the test binary's own directory is closed to other users: run a copy
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "peer.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "GANTRY_DIAL="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("peer as nobody: %v\n%s", err, out)
	}
	peertest.WaitFor(t, 10*time.Second, "the refusal to be reported", func() bool { return refused.Load() == nobody })
	select {
	case <-accepted:
		t.Fatal("a peer of another uid was accepted")
	default:
	}
	// gantry's own user still gets in
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	peertest.WaitFor(t, 10*time.Second, "own user's connection to be accepted", func() bool { return len(accepted) == 1 })
}

// TestMain runs the peer of TestPeerOfAnotherUserRefused when the test binary is
// started as it (in a child process, as another user): it connects and expects
// the server to hang up.
func TestMain(m *testing.M) {
	if path := os.Getenv("GANTRY_DIAL"); path != "" {
		if err := dialRefused(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func dialRefused(path string) error {
	c, err := net.Dial("unix", path)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("read %d bytes, %v: want the server to hang up", n, err)
	}
	return nil
}
