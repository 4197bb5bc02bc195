//go:build linux

package nftban

import (
	"context"
	"fmt"
	"net/netip"
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

var nsSeq atomic.Int32

// netns makes a network namespace for the test and returns its name.
func netns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		peertest.Missing(t, "root", "network namespaces and nftables need root")
	}
	peertest.Binary(t, "ip")
	ns := fmt.Sprintf("gnft%d%d", os.Getpid()%100000, nsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	return ns
}

// inNS runs f on an OS thread that joined namespace ns; the thread is retired after.
func inNS(t *testing.T, ns string, f func() error) {
	t.Helper()
	h, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		t.Fatal(err)
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
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// nft runs nft in ns: its output, and whether it succeeded.
func nft(t *testing.T, nftBin, ns string, args ...string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, nftBin}, args...)...).CombinedOutput()
	return string(out), err == nil
}

// TestTableInKernel: the table, its sets and chain are made at Open; bans of
// each kind appear in the sets with their timeouts, a /48 takes the place of
// its /64s, a lifted ban leaves; Close removes the table; a table a crashed
// gantry left is replaced.
func TestTableInKernel(t *testing.T) {
	nftBin := peertest.Binary(t, "nft")
	ns := netns(t)
	// a gantry that crashed left its table, with a ban in it
	cmd := exec.Command("ip", "netns", "exec", ns, nftBin, "-f", "-")
	cmd.Stdin = strings.NewReader("table inet gantry {\n set stale {\n  type ipv4_addr\n  elements = { 198.51.100.99 }\n }\n}\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	var tb *Table
	inNS(t, ns, func() error {
		var err error
		tb, err = Open(Options{TCPPorts: []uint16{80, 443, 2020}, UDPPorts: []uint16{443}})
		return err
	})
	t.Cleanup(func() { tb.Close() })
	now := time.Now()
	tb.Add(netip.MustParsePrefix("203.0.113.7/32"), now.Add(time.Hour))
	tb.Add(netip.MustParsePrefix("203.0.113.8/32"), now.Add(time.Hour))
	tb.Add(netip.MustParsePrefix("2001:db8:1:2::/64"), now.Add(10*time.Minute))
	tb.Add(netip.MustParsePrefix("2001:db8:42:1::/64"), now.Add(10*time.Minute))
	tb.Add(netip.MustParsePrefix("255.255.255.255/32"), now.Add(time.Hour)) // no address past it: gantry's own check only
	list := func() string { out, _ := nft(t, nftBin, ns, "list", "table", "inet", TableName); return out }
	peertest.WaitFor(t, 10*time.Second, "the bans in the kernel", func() bool { return tb.Stats().Applied >= 4 })
	out := list()
	for _, want := range []string{"set banned4", "set banned6", "flags interval,timeout", "203.0.113.7 timeout 1h", "203.0.113.8 timeout 1h",
		"2001:db8:1:2::/64 timeout 10m", "2001:db8:42:1::/64 timeout 10m", "tcp_ports", "80, 443, 2020", "udp_ports",
		"hook input", "@banned4", "@banned6", "drop"} {
		if !strings.Contains(out, want) {
			t.Errorf("nft list table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "stale") || strings.Contains(out, "255.255.255.255") {
		t.Errorf("the stale table or an unrepresentable ban is there:\n%s", out)
	}

	// the /48 replaces its /64; a lift leaves
	tb.Add(netip.MustParsePrefix("2001:db8:42::/48"), now.Add(time.Hour))
	tb.Remove(netip.MustParsePrefix("203.0.113.8/32"))
	defer func() {
		if t.Failed() {
			t.Logf("table:\n%s\nstats %+v", list(), tb.Stats())
		}
	}()
	peertest.WaitFor(t, 10*time.Second, "the /48 and the lift applied", func() bool {
		out := list()
		return strings.Contains(out, "2001:db8:42::/48 timeout 1h") && !strings.Contains(out, "2001:db8:42:1::/64") &&
			!strings.Contains(out, "203.0.113.8")
	})
	// a ban renewed: its timeout is the new one
	tb.Add(netip.MustParsePrefix("203.0.113.7/32"), now.Add(24*time.Hour))
	peertest.WaitFor(t, 10*time.Second, "the renewed ban", func() bool { return strings.Contains(list(), "203.0.113.7 timeout 1d") })
	if s := tb.Stats(); s.Failed != 0 || s.Dropped != 0 {
		t.Errorf("stats %+v", s)
	}

	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	if out, ok := nft(t, nftBin, ns, "list", "table", "inet", TableName); ok {
		t.Fatalf("the table outlived Close:\n%s", out)
	}
}

// TestElements: the interval of each unit ends at the address past it.
func TestElements(t *testing.T) {
	for _, tc := range []struct{ prefix, end string }{
		{"203.0.113.7/32", "203.0.113.8"},
		{"203.0.113.255/32", "203.0.114.0"},
		{"2001:db8:1:2::/64", "2001:db8:1:3::"},
		{"2001:db8:1:ffff::/64", "2001:db8:2::"},
		{"2001:db8:42::/48", "2001:db8:43::"},
		{"255.255.255.255/32", ""},
		{"ffff:ffff:ffff:ffff::/64", ""},
	} {
		t.Run(tc.prefix, func(t *testing.T) {
			els, ok := elements(netip.MustParsePrefix(tc.prefix), time.Minute)
			if tc.end == "" {
				if ok {
					t.Fatalf("an interval past the end of the space: %v", els)
				}
				return
			}
			end, _ := netip.AddrFromSlice(els[1].Key)
			if !ok || end.String() != tc.end || !els[1].IntervalEnd || els[0].Timeout != time.Minute {
				t.Fatalf("elements %+v, end %s, want %s", els, end, tc.end)
			}
		})
	}
}
