//go:build linux

package telescope

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gantry/internal/peertest"
)

// lab is two network namespaces joined by a veth pair: the scanner in B, the telescope
// in A. B routes the dark prefix 10.202.0.0/24 to A, where nothing owns it, so every
// probe lands on A's interface and is answered by no one. No packet can leave these
// namespaces: they have no other interface and no default route.
type lab struct {
	t        *testing.T
	a, b     string // namespace names
	ifA, ifB string
	macA     string
}

const (
	labAddrA = "10.201.0.1"
	labAddrB = "10.201.0.2"
	// The analysis looks at the lower half of the dark /24 only; the sentinel that
	// marks the end of a capture goes to the upper half.
	labDark     = "10.202.0.0/25"
	labSentinel = "10.202.0.200"
)

var labSeq atomic.Int32

func newLab(t *testing.T) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		peertest.Missing(t, "root", "network namespaces, veth pairs and packet sockets need root")
	}
	peertest.Binary(t, "ip")
	n := labSeq.Add(1)
	id := fmt.Sprintf("%d%d", os.Getpid()%100000, n)
	l := &lab{t: t, a: "gtelA" + id, b: "gtelB" + id, ifA: "gta" + id, ifB: "gtb" + id}
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
	run("link", "add", l.ifA, "netns", l.a, "type", "veth", "peer", "name", l.ifB, "netns", l.b)
	run("-n", l.a, "addr", "add", labAddrA+"/24", "dev", l.ifA)
	run("-n", l.b, "addr", "add", labAddrB+"/24", "dev", l.ifB)
	for _, ns := range []string{l.a, l.b} {
		run("-n", ns, "link", "set", "lo", "up")
	}
	run("-n", l.a, "link", "set", l.ifA, "up")
	run("-n", l.b, "link", "set", l.ifB, "up")
	run("-n", l.b, "route", "add", "10.202.0.0/24", "via", labAddrA)
	out, err := exec.Command("ip", "-n", l.a, "-o", "link", "show", l.ifA).Output()
	if err != nil {
		t.Fatalf("ip link show: %v", err)
	}
	f := strings.Fields(string(out))
	for i := range f {
		if f[i] == "link/ether" && i+1 < len(f) {
			l.macA = f[i+1]
		}
	}
	if l.macA == "" {
		t.Fatalf("no MAC address for %s in %q", l.ifA, out)
	}
	return l
}

// inNetns runs f on an OS thread that has joined namespace ns. The thread is never
// handed back to the Go scheduler: the goroutine exits still locked, which retires it.
func inNetns(t *testing.T, ns string, f func() error) error {
	t.Helper()
	h, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return err
	}
	defer h.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(h.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// execB runs a command in namespace B (the scanner's) and fails the test on error.
// hping3 exits 1 when nothing answers, which in a telescope is the point: exit
// status 1 is accepted when it says so.
func (l *lab) execB(ctx context.Context, args ...string) {
	l.t.Helper()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.b}, args...)...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 && bytes.Contains(out, []byte(" 0 packets received")) {
		return
	}
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// sendSentinel sends one UDP datagram from B to the sentinel address, outside the
// analysed prefix, to mark the end of a run.
func (l *lab) sendSentinel() {
	l.t.Helper()
	err := inNetns(l.t, l.b, func() error {
		c, err := net.Dial("udp4", labSentinel+":9")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("gantry-telescope-sentinel"))
		return err
	})
	if err != nil {
		l.t.Fatalf("sentinel: %v", err)
	}
}

// capture records A's interface with tcpdump while run sends traffic from B, and
// returns the capture file. It waits for tcpdump to listen, and after run for the
// sentinel to be written, so that no packet is lost at either end.
func (l *lab) capture(run func()) string {
	t := l.t
	t.Helper()
	tcpdump := peertest.Binary(t, "tcpdump")
	file := filepath.Join(t.TempDir(), "capture.pcap")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.a, tcpdump, "-i", l.ifA, "-n", "-U", "-s", "0", "-w", file)
	var stderr peertest.LogBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		}
	}
	defer stop()
	peertest.WaitFor(t, 20*time.Second, "tcpdump to listen", func() bool { return strings.Contains(stderr.String(), "listening on") })
	run()
	l.sendSentinel()
	peertest.WaitFor(t, 20*time.Second, "the sentinel in the capture", func() bool {
		b, _ := os.ReadFile(file)
		return bytes.Contains(b, []byte("gantry-telescope-sentinel"))
	})
	stop()
	return file
}
