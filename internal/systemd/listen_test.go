package systemd

import (
	"gantry/internal/peertest"

	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseListenEnv(t *testing.T) {
	cases := []struct {
		name, pid, fds, names string
		n                     int
		want                  []string
		wantErr               bool
	}{
		{name: "not activated"},
		{name: "two named", pid: "42", fds: "2", names: "listen:tls_listen", n: 2, want: []string{"listen", "tls_listen"}},
		{name: "unnamed", pid: "42", fds: "1", n: 1, want: []string{""}},
		// an ancestor's variables must not make gantry take its own descriptors
		{name: "another process's sockets", pid: "41", fds: "1"},
		{name: "no pid", fds: "1"},
		{name: "count not a number", pid: "42", fds: "x", wantErr: true},
		{name: "negative count", pid: "42", fds: "-1", wantErr: true},
		{name: "names do not match count", pid: "42", fds: "2", names: "listen", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, names, err := parseListenEnv(tc.pid, tc.fds, tc.names, 42)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if n != tc.n || !slices.Equal(names, tc.want) {
				t.Errorf("got %d %q, want %d %q", n, names, tc.n, tc.want)
			}
		})
	}
}

func listenT(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		peertest.Missing(t, "a listener on "+addr, err.Error())
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestTake(t *testing.T) {
	lo := listenT(t, "127.0.0.1:0")
	any6 := listenT(t, "[::]:0")
	loPort := lo.Addr().(*net.TCPAddr).Port
	anyPort := any6.Addr().(*net.TCPAddr).Port
	other := listenT(t, "127.0.0.1:0")
	cases := []struct {
		name      string
		socks     []Socket
		key       string
		addrs     []string
		want      []net.Listener
		unbound   []string
		leftovers int
	}{
		{name: "no sockets", key: "listen", addrs: []string{"127.0.0.1:80"}, unbound: []string{"127.0.0.1:80"}},
		{name: "by address", socks: []Socket{{"gantry.socket", lo}}, key: "listen",
			addrs: []string{fmt.Sprintf("127.0.0.1:%d", loPort), "127.0.0.1:1"}, want: []net.Listener{lo}, unbound: []string{"127.0.0.1:1"}},
		{name: "ipv4 wildcard matches the dual-stack socket", socks: []Socket{{"", any6}}, key: "listen",
			addrs: []string{fmt.Sprintf("0.0.0.0:%d", anyPort)}, want: []net.Listener{any6}},
		{name: "empty host matches the dual-stack socket", socks: []Socket{{"", any6}}, key: "listen",
			addrs: []string{fmt.Sprintf(":%d", anyPort)}, want: []net.Listener{any6}},
		{name: "loopback is not the wildcard", socks: []Socket{{"", any6}}, key: "listen",
			addrs: []string{fmt.Sprintf("127.0.0.1:%d", anyPort)}, unbound: []string{fmt.Sprintf("127.0.0.1:%d", anyPort)}, leftovers: 1},
		{name: "host name", socks: []Socket{{"", lo}}, key: "listen",
			addrs: []string{fmt.Sprintf("localhost:%d", loPort)}, want: []net.Listener{lo}},
		// the socket unit says what to serve: a named socket serves its key even on an
		// address the config does not list, and the config's address is still bound
		{name: "named for the key", socks: []Socket{{"listen", lo}}, key: "listen",
			addrs: []string{"127.0.0.1:1"}, want: []net.Listener{lo}, unbound: []string{"127.0.0.1:1"}},
		{name: "named for another key", socks: []Socket{{"tls_listen", lo}}, key: "listen",
			addrs: []string{fmt.Sprintf("127.0.0.1:%d", loPort)}, unbound: []string{fmt.Sprintf("127.0.0.1:%d", loPort)}, leftovers: 1},
		{name: "unmatched socket left over", socks: []Socket{{"", lo}, {"", other}}, key: "listen",
			addrs: []string{fmt.Sprintf("127.0.0.1:%d", loPort)}, want: []net.Listener{lo}, leftovers: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSockets(slices.Clone(tc.socks), "listen", "tls_listen")
			lns, unbound := s.Take(tc.key, tc.addrs)
			if !slices.Equal(lns, tc.want) || !slices.Equal(unbound, tc.unbound) {
				t.Errorf("took %v, unbound %q; want %v, %q", lns, unbound, tc.want, tc.unbound)
			}
			if len(s.socks) != tc.leftovers {
				t.Errorf("%d sockets left, want %d", len(s.socks), tc.leftovers)
			}
		})
	}
}

func TestCloseLeftovers(t *testing.T) {
	ln := listenT(t, "127.0.0.1:0")
	s := NewSockets([]Socket{{"gantry.socket", ln}}, "listen")
	s.Take("listen", []string{"127.0.0.1:1"})
	err := s.Close()
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) || !strings.Contains(err.Error(), "[server] listen") {
		t.Errorf("error %v should name the socket and the fix", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Error("the unclaimed socket was left open")
	}
}

// TestListeners passes two sockets to a child process the way systemd does and
// has it serve them: names in order, variables unset, no inherited descriptor
// left without close-on-exec.
func TestListeners(t *testing.T) {
	if os.Getenv("GANTRY_SYSTEMD_CHILD") == "1" {
		listenersChild()
		return
	}
	a := listenT(t, "127.0.0.1:0").(*net.TCPListener)
	b := listenT(t, "127.0.0.1:0").(*net.TCPListener)
	fa, _ := a.File()
	fb, _ := b.File()
	defer fa.Close()
	defer fb.Close()
	// LISTEN_PID must be the child's own pid: sh sets it, then execs in place.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" -test.run='^TestListeners$'`, os.Args[0])
	cmd.Env = append(os.Environ(), "GANTRY_SYSTEMD_CHILD=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=listen:admin")
	cmd.ExtraFiles = []*os.File{fa, fb}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ok" {
		t.Fatalf("child: %q", lines.Text())
	}
	for ln, want := range map[net.Listener]string{a: "listen", b: "admin"} {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if got != want+"\n" {
			t.Errorf("socket %s answered %q, want the child serving it as %q", ln.Addr(), got, want)
		}
	}
}

func listenersChild() {
	socks, err := Listeners()
	switch {
	case err != nil:
		fmt.Println(err)
	case len(socks) != 2:
		fmt.Println("got", len(socks), "sockets")
	case os.Getenv("LISTEN_FDS") != "" || os.Getenv("LISTEN_PID") != "" || os.Getenv("LISTEN_FDNAMES") != "":
		fmt.Println("LISTEN_* still set")
	default:
		for fd := listenFDsStart; fd < listenFDsStart+2; fd++ {
			if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
				fmt.Println("descriptor", fd, "would leak into child processes")
				os.Exit(1)
			}
		}
		fmt.Println("ok")
	}
	// each socket answers with its name, twice over: the test's dials may arrive in any order
	done := make(chan bool)
	for _, s := range socks {
		go func() {
			c, err := s.Listener.Accept()
			if err == nil {
				fmt.Fprintln(c, s.Name)
				c.Close()
			}
			done <- true
		}()
	}
	for range socks {
		<-done
	}
	os.Exit(0)
}
