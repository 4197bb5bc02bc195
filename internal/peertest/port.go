package peertest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// FreeAddr returns a loopback address ("127.0.0.1:PORT") whose TCP and UDP ports
// are free, for a peer or a server that must be told its port before it starts
// (pebble validating challenges on gantry's ports, a server restarted on the same
// port). The port is below the kernel's ephemeral range, so no other test (or
// process) binding port 0 can take it between this call and its use.
func FreeAddr(t testing.TB) string {
	t.Helper()
	low := ephemeralLow()
	if low <= 10000 {
		t.Fatalf("ephemeral ports start at %d: no room below them for fixed test ports", low)
	}
	for range 1000 {
		port := 10000 + rand.IntN(low-10000)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return addr
	}
	t.Fatal("no free loopback port below the ephemeral range")
	return ""
}

// FreePort is FreeAddr's port.
func FreePort(t testing.TB) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(FreeAddr(t))
	n, _ := strconv.Atoi(p)
	return n
}

// ephemeralLow is the first port the kernel hands out for port 0.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var low, high int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &low, &high); err != nil {
		return 32768
	}
	return low
}
