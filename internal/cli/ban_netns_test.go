//go:build linux

package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gantry/internal/config"
	"gantry/internal/peertest"
	"gantry/internal/server"
)

// banLab is gantry alone in namespace A (192.0.2.1) and its clients in namespace
// B, on public-looking addresses (TEST-NET-1): loopback and private sources are
// never banned, so a ban can only be seen from such an address.
type banLab struct {
	t    *testing.T
	a, b string
	ifB  string
}

var banLabSeq atomic.Int32

const (
	labServer = "192.0.2.1"
	labProber = "192.0.2.2"
	labClient = "192.0.2.3"
	labSpoof  = "192.0.2.77" // owned by no one: a SYN from it never completes a handshake
)

func newBanLab(t *testing.T) *banLab {
	t.Helper()
	if os.Geteuid() != 0 {
		peertest.Missing(t, "root", "network namespaces and raw packets need root")
	}
	peertest.Binary(t, "ip")
	id := fmt.Sprintf("%d%d", os.Getpid()%100000, banLabSeq.Add(1))
	l := &banLab{t: t, a: "gbanA" + id, b: "gbanB" + id, ifB: "gbb" + id}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", l.a)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.a).Run() })
	run("netns", "add", l.b)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.b).Run() })
	ifA := "gba" + id
	run("link", "add", ifA, "netns", l.a, "type", "veth", "peer", "name", l.ifB, "netns", l.b)
	run("-n", l.a, "addr", "add", labServer+"/24", "dev", ifA)
	run("-n", l.b, "addr", "add", labProber+"/24", "dev", l.ifB)
	run("-n", l.b, "addr", "add", labClient+"/24", "dev", l.ifB)
	for _, ns := range []string{l.a, l.b} {
		run("-n", ns, "link", "set", "lo", "up")
	}
	run("-n", l.a, "link", "set", ifA, "up")
	run("-n", l.b, "link", "set", l.ifB, "up")
	return l
}

// inNS runs f on an OS thread that joined namespace ns; the thread is retired after.
func inNS(ns string, f func() error) error {
	h, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return err
	}
	defer h.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(h.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

// inB runs a command in namespace B and returns its output and error.
func (l *banLab) inB(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.b}, args...)...).CombinedOutput()
	return string(out), err
}

// curl fetches url from the source address src: the status code, or an error
// when the connection was refused or reset.
func (l *banLab) curl(src, url string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := l.inB(ctx, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--interface", src, url)
	if err != nil {
		return 0, fmt.Errorf("curl from %s: %v: %s", src, err, out)
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

// tcpInSegs is namespace A's count of TCP segments received (RFC 1213 tcpInSegs).
func (l *banLab) tcpInSegs(ctx context.Context) int {
	l.t.Helper()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", l.a, "cat", "/proc/net/snmp").Output()
	if err != nil {
		l.t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "InSegs" && i < len(f) {
				v, _ := strconv.Atoi(f[i])
				return v
			}
		}
	}
	l.t.Fatalf("no Tcp InSegs in /proc/net/snmp:\n%s", out)
	return 0
}

// TestBanEndToEnd runs a whole gantry with bans in a namespace: nmap's
// http-enum from one address gets it banned, its next connection is refused
// while curl from another address is served, and the ban expires; spoofed SYNs
// to a dark port ban no one, while dark-port hits that complete a handshake do.
func TestBanEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nmap and hping3 in network namespaces")
	}
	l := newBanLab(t)
	nmap := peertest.Binary(t, "nmap")
	hping := peertest.Binary(t, "hping3")
	peertest.Binary(t, "curl")

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello\n"), 0o644)
	cfgPath := filepath.Join(dir, "gantry.toml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`[server]
listen = ["%s:80"]
access_log = "off"
fast_path = false

[admin]
listen = "127.0.0.1:0"

[telescope]
dark_ports = ["%s:0/tcp"]

[telescope.ban]
enabled = true
duration = ["15s"]
dark_ports = 3
file = %q

[[site]]
root = %q
`, labServer, labServer, filepath.Join(dir, "state", "bans.json"), dir)), 0o644)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var e *extras
	var srv *server.Server
	err = inNS(l.a, func() error {
		ctx := context.Background()
		var err error
		if e, err = newExtras(cfg, log); err != nil {
			return err
		}
		srv, err = server.New(ctx, cfg, server.Options{Logger: log, Version: "test", WrapListener: e.wrapListener,
			Gate: e.gate(), AdminSocket: "off", BeforeBuild: func(s *server.Server) error { return e.start(ctx, s) }})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		e.close()
	})
	web := "http://" + srv.Addrs()[0].String() + "/"
	banned := func(a string) bool { return e.bans.Banned(netip.MustParseAddr(a)) }

	if code, err := l.curl(labProber, web); err != nil || code != 200 {
		t.Fatalf("before any probe: %d %v", code, err)
	}

	// nmap http-enum from the prober: its exploit probes ban it
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// port 80 (the namespace is gantry's own): http-enum runs on ports named http
	var nmOut strings.Builder
	nm := exec.CommandContext(ctx, "ip", "netns", "exec", l.b, nmap, "-Pn", "-n", "-e", l.ifB, "-S", labProber, "-p", "80",
		"--script", "http-enum", labServer)
	nm.Stdout, nm.Stderr = &nmOut, &nmOut
	if err := nm.Start(); err != nil {
		t.Fatal(err)
	}
	nmDone := make(chan error, 1)
	go func() { nmDone <- nm.Wait() }()
	defer func() { cancel(); <-nmDone }()
	peertest.WaitFor(t, 60*time.Second, "nmap's source banned", func() bool {
		if banned(labProber) {
			return true
		}
		select {
		case err := <-nmDone:
			nmDone <- err
			t.Fatalf("nmap ended (%v) without a ban:\n%s", err, nmOut.String())
		default:
		}
		return false
	})
	if _, err := l.curl(labProber, web); err == nil {
		t.Fatal("the banned prober was served")
	}
	if code, err := l.curl(labClient, web); err != nil || code != 200 {
		t.Fatalf("another address while the prober is banned: %d %v", code, err)
	}
	bans, _ := e.bans.Snapshot(0)
	if len(bans) != 1 || bans[0].Source != labProber+"/32" || bans[0].Rule != "exploit" || bans[0].Refused == 0 {
		t.Fatalf("bans %+v", bans)
	}
	cancel()
	peertest.WaitFor(t, 60*time.Second, "the ban to expire and the prober to be served", func() bool {
		code, err := l.curl(labProber, web)
		return err == nil && code == 200
	})

	// spoofed SYNs to the dark port: no handshake, no hit, no ban
	darkPort := strings.TrimSuffix(strings.TrimPrefix(e.dark.Addrs()[0], labServer+":"), "/tcp")
	sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
	defer scancel()
	segs0 := l.tcpInSegs(sctx)
	if out, err := l.inB(sctx, hping, "-S", "-a", labSpoof, "-p", darkPort, "-c", "50", "-i", "u2000", labServer); err != nil && !strings.Contains(out, "packets transmitted") {
		t.Fatalf("hping3: %v\n%s", err, out)
	}
	if got := l.tcpInSegs(sctx) - segs0; got < 50 {
		t.Fatalf("gantry's namespace received %d TCP segments, want the 50 spoofed SYNs", got)
	}
	// handshaked hits from the client: the positive control, which also shows the
	// SYNs above had their chance (they were sent before)
	for range 3 {
		if err := inNS(l.b, func() error {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(labClient)}, Timeout: 10 * time.Second}
			c, err := d.Dial("tcp", labServer+":"+darkPort)
			if err != nil {
				return err
			}
			c.Write([]byte("SSH-2.0-probe\r\n"))
			return c.Close()
		}); err != nil {
			t.Fatal(err)
		}
	}
	peertest.WaitFor(t, 30*time.Second, "handshaked dark-port hits ban the client", func() bool { return banned(labClient) })
	if banned(labSpoof) {
		t.Fatal("spoofed SYNs got their source banned")
	}
}

// TestBanNFTables: with nftables = true a ban goes into the kernel's table inet
// gantry, so the banned prober's packets to gantry's port are dropped before
// gantry sees them (no connection refused by gantry's own check), while its
// connections to another port of the machine (SSH's stand-in) go through and
// another client is served; an unban lifts it, and the table goes with gantry.
func TestBanNFTables(t *testing.T) {
	l := newBanLab(t)
	nft := peertest.Binary(t, "nft")
	peertest.Binary(t, "curl")
	nftList := func() (string, bool) {
		out, err := exec.Command("ip", "netns", "exec", l.a, nft, "list", "table", "inet", "gantry").CombinedOutput()
		return string(out), err == nil
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello\n"), 0o644)
	cfgPath := filepath.Join(dir, "gantry.toml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`[server]
listen = ["%s:80"]
access_log = "off"

[admin]
listen = "off"

[telescope.ban]
enabled = true
nftables = true
file = "off"

[[site]]
root = %q
`, labServer, dir)), 0o644)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var e *extras
	var srv *server.Server
	var ssh net.Listener
	err = inNS(l.a, func() error {
		ctx := context.Background()
		var err error
		if ssh, err = net.Listen("tcp", labServer+":2222"); err != nil {
			return err
		}
		if e, err = newExtras(cfg, log); err != nil {
			return err
		}
		srv, err = server.New(ctx, cfg, server.Options{Logger: log, Version: "test", WrapListener: e.wrapListener,
			Gate: e.gate(), AdminSocket: "off", BeforeBuild: func(s *server.Server) error { return e.start(ctx, s) }})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ssh.Close()
	go func() {
		for {
			c, err := ssh.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
			c.Close()
		}
	}()
	srv.Serve()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		e.close()
	}
	t.Cleanup(stop)
	web := "http://" + srv.Addrs()[0].String() + "/"
	if out, ok := nftList(); !ok || !strings.Contains(out, "tcp dport @tcp_ports ip saddr @banned4") || !strings.Contains(out, "elements = { 80 }") {
		t.Fatalf("no table inet gantry with port 80 after start:\n%s\n%s", out, logs.String())
	}
	if code, err := l.curl(labProber, web); err != nil || code != 200 {
		t.Fatalf("before the ban: %d %v", code, err)
	}

	if _, err := e.bans.Ban(labProber, "test", time.Hour); err != nil {
		t.Fatal(err)
	}
	peertest.WaitFor(t, 10*time.Second, "the ban in the kernel", func() bool {
		out, _ := nftList()
		return strings.Contains(out, labProber+" timeout 1h")
	})
	if _, err := l.curl(labProber, web); err == nil {
		t.Fatal("the banned prober was served")
	}
	if _, st := e.bans.Snapshot(0); st.Refused != 0 {
		t.Fatalf("gantry refused %d connections itself: the kernel let the packets through", st.Refused)
	}
	if out, _ := nftList(); !regexp.MustCompile(`tcp dport @tcp_ports ip saddr @banned4 counter packets [1-9]`).MatchString(out) {
		t.Fatalf("the drop rule counted no packets:\n%s", out)
	}
	// the operator's SSH is not locked out
	if err := inNS(l.b, func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(labProber)}, Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", labServer+":2222")
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		banner := make([]byte, 7)
		_, err = io.ReadFull(c, banner)
		return err
	}); err != nil {
		t.Fatalf("the banned prober cannot reach another port: %v", err)
	}
	if code, err := l.curl(labClient, web); err != nil || code != 200 {
		t.Fatalf("another address while the prober is banned: %d %v", code, err)
	}

	if ok, _ := e.bans.Unban(labProber); !ok {
		t.Fatal("unban")
	}
	peertest.WaitFor(t, 10*time.Second, "the ban out of the kernel", func() bool {
		out, _ := nftList()
		return !strings.Contains(out, labProber)
	})
	if code, err := l.curl(labProber, web); err != nil || code != 200 {
		t.Fatalf("after the unban: %d %v", code, err)
	}

	stop()
	if out, ok := nftList(); ok {
		t.Fatalf("table inet gantry outlived gantry:\n%s", out)
	}
}
