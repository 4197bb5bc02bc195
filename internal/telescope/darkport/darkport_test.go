package darkport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
)

func start(t *testing.T, opts Options) *Ports {
	t.Helper()
	p, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func addr(p *Ports, proto string) string {
	for _, a := range p.Addrs() {
		if s, ok := strings.CutSuffix(a, "/"+proto); ok {
			return s
		}
	}
	return ""
}

// waitHits polls until the table shows n hits.
func waitHits(t *testing.T, p *Ports, n uint64) Snapshot {
	t.Helper()
	var s Snapshot
	peertest.WaitFor(t, 10*time.Second, fmt.Sprintf("%d hits", n), func() bool {
		s = p.Snapshot(0)
		return s.HitsTotal >= n
	})
	return s
}

func TestTCPNeverAnswers(t *testing.T) {
	p := start(t, Options{Ports: []Port{{"127.0.0.1:0", "tcp"}}, ReadTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", addr(p, "tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if len(got) > 0 {
		t.Fatalf("dark port answered %q", got)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("connection not closed after the read deadline")
	}
	s := waitHits(t, p, 1)
	port, _ := strconv.Atoi(addr(p, "tcp")[strings.LastIndexByte(addr(p, "tcp"), ':')+1:])
	h := s.Sources[0]
	if h.Source != "127.0.0.1" || h.Port != port || h.Protocol != "tcp" || h.Hits != 1 || h.FirstBytes != `"GET / HTTP/1.0\r\n\r\n"` {
		t.Fatalf("hit = %+v", h)
	}
	if s.Ports[strconv.Itoa(port)+"/tcp"] != 1 {
		t.Fatalf("per-port = %v", s.Ports)
	}
}

func TestTCPSilentClientAndLimit(t *testing.T) {
	p := start(t, Options{Ports: []Port{{"127.0.0.1:0", "tcp"}}, ReadTimeout: 100 * time.Millisecond})
	// a connect scan sends nothing: recorded when the deadline passes
	c, err := net.Dial("tcp", addr(p, "tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitHits(t, p, 1)
	// a client sending more than 1 KB: only the first 1 KB is kept
	c2, err := net.Dial("tcp", addr(p, "tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Write([]byte(strings.Repeat("A", 5000)))
	s := waitHits(t, p, 2)
	if s.Sources[0].Hits != 2 || s.Sources[0].FirstBytes != strconv.Quote(strings.Repeat("A", 1024)) {
		t.Fatalf("hit = %+v", s.Sources[0])
	}
}

func TestUDPNeverAnswers(t *testing.T) {
	p := start(t, Options{Ports: []Port{{"127.0.0.1:0", "udp"}}})
	c, err := net.Dial("udp", addr(p, "udp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("\x00\x01ipp-probe"))
	s := waitHits(t, p, 1)
	if h := s.Sources[0]; h.Protocol != "udp" || h.FirstBytes != `"\x00\x01ipp-probe"` {
		t.Fatalf("hit = %+v", h)
	}
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, 100)
	if n, err := c.Read(buf); err == nil {
		t.Fatalf("dark port answered %q", buf[:n])
	}
}

func TestBoundedTable(t *testing.T) {
	p := start(t, Options{Ports: []Port{{"127.0.0.1:0", "udp"}}, MaxSources: 10})
	// a flood from spoofed addresses cannot be sent from loopback: record directly
	for i := 0; i < 100; i++ {
		p.record(mustAddr("10.0.0."+strconv.Itoa(i)), 631, "udp", []byte("x"), new(Detail))
	}
	s := p.Snapshot(0)
	if len(s.Sources) != 10 || s.Evicted != 90 || s.HitsTotal != 100 {
		t.Fatalf("sources %d evicted %d hits %d", len(s.Sources), s.Evicted, s.HitsTotal)
	}
}

func TestCloseDoesNotWaitForSlowClients(t *testing.T) {
	p, err := Start(context.Background(), Options{Ports: []Port{{"127.0.0.1:0", "tcp"}}, ReadTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr(p, "tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs on a slow client")
	}
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Start(context.Background(), Options{Ports: []Port{{ln.Addr().String(), "tcp"}}})
	if err == nil || !strings.Contains(err.Error(), "dark port "+ln.Addr().String()+"/tcp") {
		t.Fatalf("err = %v", err)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestBanHooks: a TCP hit is reported with the bytes sent, a UDP datagram
// (whose source anyone can forge) never is, and hits from a banned source are
// recorded and counted as banned.
func TestBanHooks(t *testing.T) {
	type report struct {
		src  netip.Addr
		data string
	}
	reports := make(chan report, 10)
	p := start(t, Options{Ports: []Port{{"127.0.0.1:0", "tcp"}, {"127.0.0.1:0", "udp"}}, ReadTimeout: 200 * time.Millisecond,
		Banned: func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.1") },
		OnTCP:  func(src netip.Addr, port uint16, data []byte) { reports <- report{src, string(data)} }})
	u, err := net.Dial("udp", addr(p, "udp"))
	if err != nil {
		t.Fatal(err)
	}
	u.Write([]byte("udp probe"))
	u.Close()
	waitHits(t, p, 1)
	c, err := net.Dial("tcp", addr(p, "tcp"))
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("SSH-2.0-probe\r\n"))
	c.(*net.TCPConn).CloseWrite()
	r := <-reports
	c.Close()
	if r.src != netip.MustParseAddr("127.0.0.1") || r.data != "SSH-2.0-probe\r\n" {
		t.Fatalf("reported %+v", r)
	}
	select {
	case r := <-reports:
		t.Fatalf("a second report (the UDP datagram?): %+v", r)
	default:
	}
	s := waitHits(t, p, 2)
	if s.BannedHits != 2 {
		t.Fatalf("banned hits %d, want 2", s.BannedHits)
	}
	for _, h := range s.Sources {
		if h.Banned != h.Hits {
			t.Errorf("row %+v: banned %d of %d", h, h.Banned, h.Hits)
		}
	}
}

// TestPayloadNamed: what a source sends over a real socket is named on its row, and
// counted by rule.
func TestPayloadNamed(t *testing.T) {
	p := start(t, Options{Ports: []Port{{"127.0.0.1:0", "tcp"}, {"127.0.0.1:0", "udp"}}, ReadTimeout: 200 * time.Millisecond})
	u, err := net.Dial("udp", addr(p, "udp"))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.Write(cupsExploit)
	u.Write(snmpGet) // the same row: its detail stays the first one's
	c, err := net.Dial("tcp", addr(p, "tcp"))
	if err != nil {
		t.Fatal(err)
	}
	c.Write(rdpRequest("hax0r"))
	c.(*net.TCPConn).CloseWrite()
	defer c.Close()
	s := waitHits(t, p, 3)
	rows := map[string]Hit{}
	for _, h := range s.Sources {
		rows[h.Protocol] = h
	}
	if h := rows["udp"]; h.Rule != "cups-browsed" || h.Category != "exploit" || h.Detail != "http://198.51.100.7:12345/printers/EVIL_PRINTER" || h.Hits != 2 {
		t.Errorf("udp row %+v", h)
	}
	if h := rows["tcp"]; h.Rule != "rdp-cookie" || h.Detail != "mstshash=hax0r" {
		t.Errorf("tcp row %+v", h)
	}
	counts := map[string]uint64{}
	for _, r := range s.Rules {
		if r.Ref == "" {
			t.Errorf("rule %q without ref", r.Name)
		}
		counts[r.Name] = r.Count
	}
	if counts["cups-browsed"] != 1 || counts["snmp-get"] != 1 || counts["rdp-cookie"] != 1 || counts["dns-any"] != 0 {
		t.Errorf("rule counts %v", counts)
	}
}
