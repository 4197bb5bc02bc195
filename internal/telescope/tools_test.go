//go:build linux

package telescope

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// Captures made here with real scanners between two network namespaces, then analysed
// like any capture file. Each tool's published fingerprint must name it.
func TestRealToolCaptures(t *testing.T) {
	if testing.Short() {
		t.Skip("real-tool captures take seconds each; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	type want struct {
		source, kind, protocol, tool string
		ports                        []uint16
		minTargets                   uint64
	}
	cases := []struct {
		name   string
		binary string
		args   func(l *lab) []string
		opts   Options // besides Dark
		scan   *want
		attack *Attack // Victim, Protocol, Ports, minimum Packets
	}{
		{
			name:   "nmap vertical SYN scan",
			binary: "nmap",
			args: func(l *lab) []string {
				return []string{"nmap", "-sS", "-Pn", "-n", "-T5", "--max-retries", "0", "-p", "1-40", "10.202.0.5"}
			},
			opts: Options{ScanPorts: 15},
			scan: &want{labAddrB, "vertical", "tcp", "nmap", nil, 1},
		},
		{
			name:   "nmap horizontal SYN scan",
			binary: "nmap",
			args: func(l *lab) []string {
				return []string{"nmap", "-sS", "-Pn", "-n", "-T5", "--max-retries", "0", "-p", "445", "10.202.0.0/27"}
			},
			scan: &want{labAddrB, "horizontal", "tcp", "nmap", []uint16{445}, 32},
		},
		{
			name:   "masscan strobe",
			binary: "masscan",
			args: func(l *lab) []string {
				return []string{"masscan", "10.202.0.0/26", "-p80,443,8080", "--rate", "2000", "--wait", "0",
					"-e", l.ifB, "--adapter-ip", labAddrB, "--router-mac", l.macA}
			},
			scan: &want{labAddrB, "strobe", "tcp", "masscan", []uint16{80, 443, 8080}, 64},
		},
		{
			name:   "zmap horizontal",
			binary: "zmap",
			args: func(l *lab) []string {
				empty := filepath.Join(l.t.TempDir(), "blocklist")
				os.WriteFile(empty, nil, 0o644)
				return []string{"zmap", "-p", "23", "-i", l.ifB, "-S", labAddrB, "-G", l.macA, "-r", "2000",
					"-c", "0", "-b", empty, "-q", "-o", "/dev/null", "10.202.0.0/26"}
			},
			scan: &want{labAddrB, "horizontal", "tcp", "zmap", []uint16{23}, 64},
		},
		{
			name:   "nmap UDP scan",
			binary: "nmap",
			args: func(l *lab) []string {
				return []string{"nmap", "-sU", "-Pn", "-n", "-T5", "--max-retries", "0", "-p", "100-130", "10.202.0.6"}
			},
			scan: &want{labAddrB, "vertical", "udp", "", nil, 1},
		},
		{
			name:   "nmap ICMP echo sweep",
			binary: "nmap",
			args: func(l *lab) []string {
				return []string{"nmap", "-sn", "-PE", "-n", "-T5", "--max-retries", "0", "10.202.0.0/27"}
			},
			scan: &want{labAddrB, "horizontal", "icmp", "", []uint16{}, 32},
		},
		{
			name:   "hping3 with Mirai's sequence number",
			binary: "hping3",
			args: func(l *lab) []string {
				// Mirai sets the TCP sequence number to the target's address; one
				// target and a fixed sequence number reproduce that with hping3.
				// 10.202.0.9 = 0x0aca0009 = 181010441.
				return []string{"hping3", "-q", "-I", l.ifB, "-S", "-M", "181010441", "-p", "++1", "-i", "u5000",
					"-c", "40", "10.202.0.9"}
			},
			scan: &want{labAddrB, "vertical", "tcp", "mirai", nil, 1},
		},
		{
			name:   "hping3 SYN-ACK backscatter",
			binary: "hping3",
			args: func(l *lab) []string {
				// A victim at B answering a SYN flood spoofed from the dark prefix.
				return []string{"hping3", "-q", "-I", l.ifB, "--rand-dest", "-S", "-A", "-s", "80", "-k", "-p", "4000",
					"-i", "u20000", "-c", "120", "10.202.0.x"}
			},
			opts:   Options{DoSDuration: time.Second, DoSPackets: 25, DoSPPM: 25},
			attack: &Attack{Victim: labAddrB, Protocol: "tcp", Ports: []uint16{80}, Packets: 40},
		},
		{
			name:   "hping3 ICMP port unreachable backscatter",
			binary: "hping3",
			args: func(l *lab) []string {
				// Port unreachables quoting UDP packets spoofed from the telescope to a
				// victim: the victim is the quoted destination, not the ICMP sender.
				return []string{"hping3", "-q", "-I", l.ifB, "--rand-dest", "-1", "-C", "3", "-K", "3",
					"--icmp-ipproto", "17", "--icmp-ipsrc", "10.202.0.9", "--icmp-ipdst", "10.203.0.7",
					"--icmp-dstport", "53", "-i", "u20000", "-c", "80", "10.202.0.x"}
			},
			opts:   Options{DoSDuration: time.Second, DoSPackets: 25, DoSPPM: 25},
			attack: &Attack{Victim: "10.203.0.7", Protocol: "udp", Ports: []uint16{53}, Packets: 30},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			peertest.Binary(t, tc.binary)
			l := newLab(t)
			file := l.capture(func() { l.execB(ctx, tc.args(l)...) })
			opts := tc.opts
			opts.Dark = []netip.Prefix{netip.MustParsePrefix(labDark)}
			r := analyzeJSON(t, opts, file)
			t.Logf("%d packets: %+v other=%v", r.Packets, r.Classes, r.OtherReasons)
			if r.OtherReasons["not-dark"] < 1 {
				t.Errorf("the sentinel outside --dark was not counted as not-dark: %v", r.OtherReasons)
			}
			if w := tc.scan; w != nil {
				if len(r.Scans) != 1 {
					t.Fatalf("want one scan, got %+v", r.Scans)
				}
				s := r.Scans[0]
				if s.Source != w.source || s.Kind != w.kind || s.Protocol != w.protocol || s.Tool != w.tool {
					t.Errorf("scan = %s %s %s tool %q; want %s %s %s tool %q", s.Source, s.Kind, s.Protocol, s.Tool,
						w.source, w.kind, w.protocol, w.tool)
				}
				if w.ports != nil && !slices.Equal(s.Ports, w.ports) {
					t.Errorf("ports = %v, want %v", s.Ports, w.ports)
				}
				if s.Targets < w.minTargets {
					t.Errorf("targets = %d, want ≥ %d", s.Targets, w.minTargets)
				}
			}
			if w := tc.attack; w != nil {
				if len(r.Attacks) != 1 {
					t.Fatalf("want one attack, got %+v", r.Attacks)
				}
				a := r.Attacks[0]
				if a.Victim != w.Victim || a.Protocol != w.Protocol || !slices.Equal(a.Ports, w.Ports) || a.Packets < w.Packets {
					t.Errorf("attack = %+v, want victim %s %s ports %v ≥%d packets", a, w.Victim, w.Protocol, w.Ports, w.Packets)
				}
				if len(r.Scans) != 0 {
					t.Errorf("a source that only answers was called a scanner: %+v", r.Scans)
				}
				// est_pps = observed rate × 2^32 / n, n = 128 addresses in --dark.
				rate := float64(a.Packets) / a.End.Sub(a.Start).Seconds()
				if want := rate * (1 << 32) / 128; a.EstPPS < want*0.99 || a.EstPPS > want*1.01 {
					t.Errorf("est_pps = %g, want %g", a.EstPPS, want)
				}
			}
		})
	}
}

// The live capture test: an AF_PACKET socket inside the telescope's namespace sees
// nmap's scan as it happens, and Snapshot reports it while the capture runs; both with
// the packet ring and with the one-read-per-packet fallback.
func TestLiveCaptureInNetns(t *testing.T) {
	for _, ring := range []bool{true, false} {
		t.Run(map[bool]string{true: "ring", false: "read"}[ring], func(t *testing.T) { testLiveCapture(t, ring) })
	}
}

func testLiveCapture(t *testing.T, ring bool) {
	nmap := peertest.Binary(t, "nmap")
	l := newLab(t)
	dark, _ := ParsePrefix(labDark)
	var live *Live
	var logs peertest.LogBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	err := inNetns(t, l.a, func() error {
		var err error
		live, err = startLive(context.Background(), l.ifA, Options{Dark: []netip.Prefix{dark}}, logger, ring)
		return err
	})
	if err != nil {
		t.Fatalf("StartLive: %v", err)
	}
	if want := fmt.Sprintf("ring=%v", ring); !strings.Contains(logs.String(), want) {
		t.Fatalf("capture did not start with %s: %s", want, logs.String())
	}
	t.Cleanup(func() { live.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The telescope host's own packets are not traffic to it: 30 datagrams that A
	// sends into the dark prefix must not make A a scanner.
	if out, err := exec.Command("ip", "-n", l.a, "route", "add", "10.202.0.0/24", "via", labAddrB).CombinedOutput(); err != nil {
		t.Fatalf("route: %v %s", err, out)
	}
	err = inNetns(t, l.a, func() error {
		for i := 1; i <= 30; i++ {
			c, err := net.Dial("udp4", fmt.Sprintf("10.202.0.%d:161", i))
			if err != nil {
				return err
			}
			c.Write([]byte("public"))
			c.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Snapshots race the capture while nmap runs (go test -race checks the locking).
	stop := make(chan struct{})
	polled := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				polled <- n
				return
			default:
				live.Snapshot()
				n++
			}
		}
	}()
	l.execB(ctx, nmap, "-sS", "-Pn", "-n", "-T5", "--max-retries", "0", "-p", "20-60", "10.202.0.9")
	close(stop)
	<-polled
	var r Report
	var s Scan
	// The scan is reported from its 15th port on, while the ring may still hold the
	// rest of nmap's probes: wait for all 41.
	peertest.WaitFor(t, 20*time.Second, "the live capture to report the scan's 41 ports", func() bool {
		r = live.Snapshot()
		for _, sc := range r.Scans {
			if sc.Source == labAddrB {
				s = sc
				return len(sc.Ports) >= 41
			}
		}
		return false
	})
	if s.Kind != "vertical" || s.Tool != "nmap" || len(s.Ports) != 41 {
		t.Errorf("live scan = %+v", s)
	}
	if r.Classes.Scan < 41 {
		t.Errorf("scan packets = %d, want ≥ 41", r.Classes.Scan)
	}
	for _, s := range r.Scans {
		if s.Source == labAddrA {
			t.Errorf("the capturing host's own outgoing packets were counted: %+v", s)
		}
	}
	if err := live.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := live.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStartLiveErrors(t *testing.T) {
	_, err := StartLive(context.Background(), "no-such-if0", Options{}, nil)
	if err == nil || !strings.Contains(err.Error(), `"no-such-if0"`) {
		t.Errorf("StartLive on a missing interface: %v", err)
	}
}
