//go:build linux

package ban

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gantry/internal/peertest"
)

// TestSelfNeverBanned: gantry never bans the machine it runs on (its own
// requests to its public address, an app calling its own site), neither as
// one unit nor inside an escalated /48: on a host whose /64 sits in a /48
// shared with other customers, the /48's escalation would cut it off itself
// (the kernel's input hook sees its packets to itself too). The machine is a
// network namespace holding 2001:db8:42:1::5.
func TestSelfNeverBanned(t *testing.T) {
	if os.Geteuid() != 0 {
		peertest.Missing(t, "root", "a network namespace needs root")
	}
	ip := peertest.Binary(t, "ip")
	ns := fmt.Sprintf("gself%d", os.Getpid()%100000)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() { exec.Command(ip, "netns", "del", ns).Run() })
	run("-n", ns, "link", "set", "lo", "up")
	run("-n", ns, "addr", "add", "2001:db8:42:1::5/64", "dev", "lo")
	run("-n", ns, "addr", "add", "203.0.113.5/32", "dev", "lo")

	h, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	type made struct {
		l   *List
		err error
	}
	ch := make(chan made, 1)
	go func() {
		// the thread is left in the namespace and retired with the goroutine
		runtime.LockOSThread()
		if err := unix.Setns(int(h.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- made{err: err}
			return
		}
		l, err := New(Options{Escalate: 2, Now: c.now})
		ch <- made{l, err}
	}()
	m := <-ch
	if m.err != nil {
		t.Fatal(m.err)
	}
	l := m.l
	t.Cleanup(func() { l.Close() })

	self6, self4 := netip.MustParseAddr("2001:db8:42:1::5"), netip.MustParseAddr("203.0.113.5")
	l.Offense(self4, Exploit, "x")
	l.Offense(self6, Exploit, "x")
	if _, err := l.Ban(self4.String(), "by hand", time.Hour); err == nil {
		t.Error("a hand ban of the machine's own address was accepted")
	}
	// two other /64s of its /48: escalation would take the machine's with them
	l.Offense(netip.MustParseAddr("2001:db8:42:2::1"), Exploit, "x")
	l.Offense(netip.MustParseAddr("2001:db8:42:3::1"), Exploit, "x")
	if l.Banned(self4) || l.Banned(self6) {
		bans, _ := l.Snapshot(0)
		t.Fatalf("the machine itself is banned: %+v", bans)
	}
	if !l.Banned(netip.MustParseAddr("2001:db8:42:2::1")) {
		t.Fatal("the other /64 was not banned")
	}
}
