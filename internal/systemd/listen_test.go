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

func packetT(t *testing.T, addr string) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		peertest.Missing(t, "a UDP socket on "+addr, err.Error())
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

func TestMatch(t *testing.T) {
	lo := listenT(t, "127.0.0.1:0")
	any6 := listenT(t, "[::]:0")
	loPort := lo.Addr().(*net.TCPAddr).Port
	anyPort := any6.Addr().(*net.TCPAddr).Port
	other := listenT(t, "127.0.0.1:0")
	otherPort := other.Addr().(*net.TCPAddr).Port
	// HTTP/3's UDP socket on the port of the TLS stream socket, as a .socket unit
	// with ListenStream=443 and ListenDatagram=443 makes them
	udp := packetT(t, fmt.Sprintf("127.0.0.1:%d", otherPort))
	at := func(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
	type got struct {
		lns     []net.Listener
		pcs     []net.PacketConn
		unbound []string
	}
	cases := []struct {
		name      string
		socks     []Socket
		wants     []Want
		want      map[string]got
		leftovers int
	}{
		{name: "no sockets", wants: []Want{{Key: "listen", Addrs: []string{"127.0.0.1:80"}}},
			want: map[string]got{"listen": {unbound: []string{"127.0.0.1:80"}}}},
		{name: "by address", socks: []Socket{{Name: "gantry.socket", Listener: lo}},
			wants: []Want{{Key: "listen", Addrs: []string{at(loPort), "127.0.0.1:1"}}},
			want:  map[string]got{"listen": {lns: []net.Listener{lo}, unbound: []string{"127.0.0.1:1"}}}},
		{name: "ipv4 wildcard matches the dual-stack socket", socks: []Socket{{Listener: any6}},
			wants: []Want{{Key: "listen", Addrs: []string{fmt.Sprintf("0.0.0.0:%d", anyPort)}}},
			want:  map[string]got{"listen": {lns: []net.Listener{any6}}}},
		{name: "empty host matches the dual-stack socket", socks: []Socket{{Listener: any6}},
			wants: []Want{{Key: "listen", Addrs: []string{fmt.Sprintf(":%d", anyPort)}}},
			want:  map[string]got{"listen": {lns: []net.Listener{any6}}}},
		{name: "loopback is not the wildcard", socks: []Socket{{Listener: any6}},
			wants: []Want{{Key: "listen", Addrs: []string{at(anyPort)}}},
			want:  map[string]got{"listen": {unbound: []string{at(anyPort)}}}, leftovers: 1},
		{name: "host name", socks: []Socket{{Listener: lo}},
			wants: []Want{{Key: "listen", Addrs: []string{fmt.Sprintf("localhost:%d", loPort)}}},
			want:  map[string]got{"listen": {lns: []net.Listener{lo}}}},
		// the socket unit says what to serve: a named socket serves its key even on an
		// address the config does not list, and the config's address is still bound
		{name: "named for the key", socks: []Socket{{Name: "listen", Listener: lo}},
			wants: []Want{{Key: "listen", Addrs: []string{"127.0.0.1:1"}}},
			want:  map[string]got{"listen": {lns: []net.Listener{lo}, unbound: []string{"127.0.0.1:1"}}}},
		// one unit with ListenStream=80, ListenStream=443, ListenDatagram=443 and
		// FileDescriptorName=listen: the address says which is HTTPS
		{name: "one name for several sockets", socks: []Socket{{Name: "listen", Listener: lo}, {Name: "listen", Listener: other}, {Name: "listen", Packet: udp}},
			wants: []Want{{Key: "listen", Addrs: []string{at(loPort)}}, {Key: "tls_listen", Addrs: []string{at(otherPort)}, Datagram: true}},
			want: map[string]got{"listen": {lns: []net.Listener{lo}},
				"tls_listen": {lns: []net.Listener{other}, pcs: []net.PacketConn{udp}}}},
		{name: "unnamed sockets by address", socks: []Socket{{Name: "gantry.socket", Packet: udp}, {Name: "gantry.socket", Listener: other}, {Name: "gantry.socket", Listener: lo}},
			wants: []Want{{Key: "listen", Addrs: []string{at(loPort)}}, {Key: "tls_listen", Addrs: []string{at(otherPort)}, Datagram: true}},
			want: map[string]got{"listen": {lns: []net.Listener{lo}},
				"tls_listen": {lns: []net.Listener{other}, pcs: []net.PacketConn{udp}}}},
		// a unit of its own, gantry-https.socket, named tls_listen on an address the
		// config spells differently
		{name: "named for tls_listen", socks: []Socket{{Name: "listen", Listener: lo}, {Name: "tls_listen", Listener: other}, {Name: "tls_listen", Packet: udp}},
			wants: []Want{{Key: "listen", Addrs: []string{at(loPort)}}, {Key: "tls_listen", Addrs: []string{"127.0.0.1:1"}, Datagram: true}},
			want: map[string]got{"listen": {lns: []net.Listener{lo}},
				"tls_listen": {lns: []net.Listener{other}, pcs: []net.PacketConn{udp}, unbound: []string{"127.0.0.1:1"}}}},
		// HTTPS is off: the HTTPS socket is no one's, and Close says so
		{name: "named for a key without addresses", socks: []Socket{{Name: "tls_listen", Listener: other}, {Name: "tls_listen", Packet: udp}},
			wants: []Want{{Key: "listen", Addrs: []string{at(loPort)}}, {Key: "tls_listen", Datagram: true}},
			want:  map[string]got{"listen": {unbound: []string{at(loPort)}}, "tls_listen": {}}, leftovers: 2},
		{name: "datagram socket for a stream-only key", socks: []Socket{{Name: "listen", Packet: udp}},
			wants: []Want{{Key: "listen", Addrs: []string{at(otherPort)}}},
			want:  map[string]got{"listen": {unbound: []string{at(otherPort)}}}, leftovers: 1},
		{name: "unmatched socket left over", socks: []Socket{{Listener: lo}, {Listener: other}},
			wants: []Want{{Key: "listen", Addrs: []string{at(loPort)}}},
			want:  map[string]got{"listen": {lns: []net.Listener{lo}}}, leftovers: 1},
		{name: "one socket serves one address", socks: []Socket{{Listener: lo}},
			wants: []Want{{Key: "listen", Addrs: []string{at(loPort), fmt.Sprintf("localhost:%d", loPort)}}},
			want:  map[string]got{"listen": {lns: []net.Listener{lo}, unbound: []string{fmt.Sprintf("localhost:%d", loPort)}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSockets(slices.Clone(tc.socks))
			claimed := s.Match(tc.wants...)
			for key, want := range tc.want {
				c := claimed[key]
				if c == nil {
					t.Fatalf("no claim for %s", key)
				}
				if !slices.Equal(c.Listeners, want.lns) || !slices.Equal(c.Packets, want.pcs) || !slices.Equal(c.Unbound, want.unbound) {
					t.Errorf("%s took %v %v, unbound %q; want %v %v, %q", key, c.Listeners, c.Packets, c.Unbound, want.lns, want.pcs, want.unbound)
				}
			}
			if len(s.socks) != tc.leftovers {
				t.Errorf("%d sockets left, want %d", len(s.socks), tc.leftovers)
			}
		})
	}
}

func TestCloseLeftovers(t *testing.T) {
	ln := listenT(t, "127.0.0.1:0")
	pc := packetT(t, "127.0.0.1:0")
	s := NewSockets([]Socket{{Name: "gantry.socket", Listener: ln}, {Name: "gantry.socket", Packet: pc}})
	s.Match(Want{Key: "listen", Addrs: []string{"127.0.0.1:1"}})
	err := s.Close()
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) || !strings.Contains(err.Error(), "[server] listen") {
		t.Errorf("error %v should name the socket and the fix", err)
	}
	if !strings.Contains(err.Error(), pc.LocalAddr().String()) || !strings.Contains(err.Error(), "ListenDatagram=") {
		t.Errorf("error %v should name the datagram socket and the fix", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Error("the unclaimed socket was left open")
	}
	if _, _, err := pc.ReadFrom(make([]byte, 1)); err == nil {
		t.Error("the unclaimed datagram socket was left open")
	}
}

// TestListeners passes two stream sockets and a datagram socket to a child
// process the way systemd does and has it serve them: names in order, variables
// unset, no inherited descriptor left without close-on-exec.
func TestListeners(t *testing.T) {
	if os.Getenv("GANTRY_SYSTEMD_CHILD") == "1" {
		listenersChild()
		return
	}
	a := listenT(t, "127.0.0.1:0").(*net.TCPListener)
	b := listenT(t, "127.0.0.1:0").(*net.TCPListener)
	u := packetT(t, "127.0.0.1:0").(*net.UDPConn)
	fa, _ := a.File()
	fb, _ := b.File()
	fu, _ := u.File()
	defer fa.Close()
	defer fb.Close()
	defer fu.Close()
	// LISTEN_PID must be the child's own pid: sh sets it, then execs in place.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" -test.run='^TestListeners$'`, os.Args[0])
	cmd.Env = append(os.Environ(), "GANTRY_SYSTEMD_CHILD=1", "LISTEN_FDS=3", "LISTEN_FDNAMES=listen:admin:tls_listen")
	cmd.ExtraFiles = []*os.File{fa, fb, fu}
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
	c, err := net.Dial("udp", u.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("?"))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "tls_listen\n" {
		t.Errorf("datagram socket answered %q (%v), want the child serving it as tls_listen", buf[:n], err)
	}
}

func listenersChild() {
	socks, err := Listeners()
	switch {
	case err != nil:
		fmt.Println(err)
	case len(socks) != 3:
		fmt.Println("got", len(socks), "sockets")
	case socks[0].Listener == nil || socks[1].Listener == nil || socks[2].Packet == nil:
		fmt.Println("sockets of the wrong kind:", socks)
	case os.Getenv("LISTEN_FDS") != "" || os.Getenv("LISTEN_PID") != "" || os.Getenv("LISTEN_FDNAMES") != "":
		fmt.Println("LISTEN_* still set")
	default:
		for fd := listenFDsStart; fd < listenFDsStart+3; fd++ {
			if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
				fmt.Println("descriptor", fd, "would leak into child processes")
				os.Exit(1)
			}
		}
		fmt.Println("ok")
	}
	// each socket answers with its name: the test's dials may arrive in any order
	done := make(chan bool)
	for _, s := range socks {
		go func() {
			defer func() { done <- true }()
			if s.Packet != nil {
				buf := make([]byte, 64)
				_, from, err := s.Packet.ReadFrom(buf)
				if err == nil {
					s.Packet.WriteTo([]byte(s.Name+"\n"), from)
				}
				return
			}
			c, err := s.Listener.Accept()
			if err == nil {
				fmt.Fprintln(c, s.Name)
				c.Close()
			}
		}()
	}
	for range socks {
		<-done
	}
	os.Exit(0)
}
