package telescope

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"
)

// classifyOne runs one frame through a fresh classifier and says where it went.
func classifyOne(t *testing.T, link uint32, frame []byte) (class string, reasonName string, victim *flowKey, scan *flowKey) {
	t.Helper()
	c := NewClassifier(Options{})
	c.Packet(1e18, link, frame)
	switch {
	case c.classes[classBackscatter] == 1:
		class = "backscatter"
	case c.classes[classScan] == 1:
		class = "scan"
	case c.classes[classOther] == 1:
		class = "other"
		for i, n := range c.other {
			if n > 0 {
				reasonName = reasonNames[i]
			}
		}
	}
	if c.vectors.len() == 1 {
		victim = &c.vectors.keys[0]
	}
	if c.scans.len() == 1 {
		scan = &c.scans.keys[0]
	}
	return
}

func key(a string, proto uint8) *flowKey {
	return &flowKey{addrFrom(netip.MustParseAddr(a)), proto}
}

func TestClassifyPackets(t *testing.T) {
	const src, dst = "198.51.7.9", "192.0.2.77"
	quotedUDP := ip4Hdr{src: dst, dst: "203.0.113.5", proto: protoUDP}.packet(udpBytes(5353, 53, nil))
	quotedTCP6 := ip6Packet("2001:db8::77", "2001:db8:1::5", protoTCP, tcpHdr{sport: 1234, dport: 443, flags: flagSYN}.bytes()[:8])
	hopByHop := append([]byte{protoTCP, 0, 1, 4, 0, 0, 0, 0}, tcpHdr{sport: 999, dport: 22, flags: flagSYN, win: 1000}.bytes()...)
	frag6 := append([]byte{protoUDP, 0, 0x01, 0x00, 0, 0, 0, 1}, make([]byte, 16)...) // offset 32, a later fragment
	dnsResp := []byte{0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 3, 'c', 'o', 'm', 0, 0, 1, 0, 1, 0xc0, 0x0c, 0, 1, 0, 1}

	cases := []struct {
		name         string
		link         uint32
		frame        []byte
		class        string
		reason       string
		victim, scan *flowKey
	}{
		{"TCP SYN is a probe", LinkEthernet, syn4(src, dst, 23), "scan", "", nil, key(src, pTCP)},
		{"TCP FIN is a probe", LinkEthernet, tcp4(src, dst, tcpHdr{sport: 1, dport: 80, flags: flagFIN}), "scan", "", nil, key(src, pTCP)},
		{"SYN-ACK is backscatter from its victim", LinkEthernet, tcp4(src, dst, tcpHdr{sport: 80, dport: 3000, flags: flagSYN | flagACK}), "backscatter", "", key(src, pTCP), nil},
		{"RST is backscatter", LinkEthernet, tcp4(src, dst, tcpHdr{sport: 80, dport: 3000, flags: flagRST}), "backscatter", "", key(src, pTCP), nil},
		{"RST-ACK is backscatter", LinkEthernet, tcp4(src, dst, tcpHdr{sport: 80, dport: 3000, flags: flagRST | flagACK}), "backscatter", "", key(src, pTCP), nil},
		{"XMAS flags are abnormal", LinkEthernet, tcp4(src, dst, tcpHdr{sport: 1, dport: 80, flags: flagFIN | flagPSH | flagURG}), "other", "spoofed:abnormal-protocol", nil, nil},
		{"SYN-RST is abnormal", LinkEthernet, tcp4(src, dst, tcpHdr{sport: 1, dport: 80, flags: flagSYN | flagRST}), "other", "spoofed:abnormal-protocol", nil, nil},
		{"GRE is an abnormal protocol", LinkEthernet, ether(ip4Hdr{src: src, dst: dst, proto: 47}.packet(make([]byte, 8))), "other", "spoofed:abnormal-protocol", nil, nil},
		{"later fragment", LinkEthernet, ether(ip4Hdr{src: src, dst: dst, proto: protoUDP, frag: 0x0010}.packet(make([]byte, 8))), "other", "spoofed:fragmented", nil, nil},
		{"first fragment holds the header and counts (as in Corsaro)", LinkEthernet, ether(ip4Hdr{src: src, dst: dst, proto: protoUDP, frag: 0x2000}.packet(udpBytes(1, 2, nil))), "scan", "", nil, key(src, pUDP)},
		{"DF alone is no fragment", LinkEthernet, ether(ip4Hdr{src: src, dst: dst, proto: protoUDP, frag: 0x4000}.packet(udpBytes(1000, 161, nil))), "scan", "", nil, key(src, pUDP)},
		{"source ending in .0", LinkEthernet, syn4("198.51.7.0", dst, 23), "other", "spoofed:last-byte-src-0", nil, nil},
		{"source ending in .255", LinkEthernet, syn4("198.51.7.255", dst, 23), "other", "spoofed:last-byte-src-255", nil, nil},
		{"source equals destination", LinkEthernet, syn4(dst, dst, 23), "other", "spoofed:same-src-dst", nil, nil},
		{"UDP port 0", LinkEthernet, ether(ip4Hdr{src: src, dst: dst, proto: protoUDP}.packet(udpBytes(0, 53, nil))), "other", "spoofed:udp-port-0", nil, nil},
		{"TCP port 0", LinkEthernet, tcp4(src, dst, tcpHdr{sport: 5, dport: 0, flags: flagSYN}), "other", "spoofed:tcp-port-0", nil, nil},
		{"UDP probe", LinkEthernet, ether(ip4Hdr{src: src, dst: dst, proto: protoUDP}.packet(udpBytes(40000, 161, []byte("public")))), "scan", "", nil, key(src, pUDP)},
		{"UDP IP length 96", LinkEthernet, ether(ip4Hdr{src: src, dst: dst, proto: protoUDP}.packet(udpBytes(40000, 1434, make([]byte, 68)))), "other", "erratic:udp-ip-len-96", nil, nil},
		{"DNS response", LinkEthernet, ether(ip4Hdr{src: src, dst: dst, proto: protoUDP}.packet(udpBytes(53, 33000, dnsResp))), "other", "erratic:dns-response", nil, nil},
		{"BitTorrent DHT", LinkEthernet, ether(ip4Hdr{src: src, dst: dst, proto: protoUDP}.packet(udpBytes(6881, 6881, []byte("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe")))), "other", "erratic:bittorrent", nil, nil},
		{"ICMP echo request is a probe", LinkEthernet, ether(ip4Hdr{src: src, dst: dst, proto: protoICMP}.packet(icmpBytes(8, 0, nil))), "scan", "", nil, key(src, pICMP)},
		{"ICMP echo reply is backscatter", LinkEthernet, ether(ip4Hdr{src: src, dst: dst, proto: protoICMP}.packet(icmpBytes(0, 0, nil))), "backscatter", "", key(src, pICMP), nil},
		{"ICMP port unreachable: victim is the quoted destination", LinkEthernet,
			ether(ip4Hdr{src: src, dst: dst, proto: protoICMP}.packet(icmpBytes(3, 3, quotedUDP))), "backscatter", "", key("203.0.113.5", pUDP), nil},
		{"ICMP time exceeded without a quote falls back to the sender", LinkEthernet,
			ether(ip4Hdr{src: src, dst: dst, proto: protoICMP}.packet(icmpBytes(11, 0, nil))), "backscatter", "", key(src, pICMP), nil},
		{"ICMP router advertisement", LinkEthernet, ether(ip4Hdr{src: src, dst: dst, proto: protoICMP}.packet(icmpBytes(9, 0, nil))), "other", "icmp-other", nil, nil},
		{"ICMP header cut short", LinkEthernet, ether(ip4Hdr{src: src, dst: dst, proto: protoICMP}.packet(nil)), "other", "malformed", nil, nil},
		{"TCP header cut short", LinkEthernet, ether(ip4Hdr{src: src, dst: dst, proto: protoTCP}.packet([]byte{0, 80})), "other", "malformed", nil, nil},
		{"IPv6 SYN behind a hop-by-hop header", LinkEthernet, ether(ip6Packet("2001:db8::9", "2001:db8:1::1", 0, hopByHop)), "scan", "", nil, key("2001:db8::9", pTCP)},
		{"IPv6 later fragment", LinkEthernet, ether(ip6Packet("2001:db8::9", "2001:db8:1::1", 44, frag6)), "other", "spoofed:fragmented", nil, nil},
		{"ICMPv6 echo request", LinkEthernet, ether(ip6Packet("2001:db8::9", "2001:db8:1::1", protoICMPv6, icmpBytes(128, 0, nil))), "scan", "", nil, key("2001:db8::9", pICMP)},
		{"ICMPv6 unreachable quoting TCP", LinkEthernet,
			ether(ip6Packet("2001:db8::1", "2001:db8::77", protoICMPv6, icmpBytes(1, 4, quotedTCP6))), "backscatter", "", key("2001:db8:1::5", pTCP), nil},
		{"ICMPv4 inside IPv6 is abnormal", LinkEthernet, ether(ip6Packet("2001:db8::9", "2001:db8:1::1", protoICMP, icmpBytes(8, 0, nil))), "other", "spoofed:abnormal-protocol", nil, nil},
		{"ARP is not IP", LinkEthernet, append(make([]byte, 12), 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1), "other", "not-ip", nil, nil},
		{"runt Ethernet frame", LinkEthernet, []byte{1, 2, 3}, "other", "malformed", nil, nil},
		{"unknown link type", 9999, syn4(src, dst, 23), "other", "unknown-link-type", nil, nil},
		{"raw IPv4", LinkRaw, ip4Hdr{src: src, dst: dst, proto: protoTCP}.packet(tcpHdr{sport: 1, dport: 22, flags: flagSYN}.bytes()), "scan", "", nil, key(src, pTCP)},
		{"IPv6 payload length past the capture (fuzz crasher ba2834e3)", LinkIPv6, func() []byte {
			b := ip6Packet("2001:db8::9", "2001:db8:1::1", protoUDP, udpBytes(5, 500, nil))
			b[4], b[5] = 0xff, 0xff
			return b
		}(), "scan", "", nil, key("2001:db8::9", pUDP)},
		{"raw IPv6", LinkIPv6, ip6Packet("2001:db8::9", "2001:db8:1::1", protoUDP, udpBytes(5, 500, nil)), "scan", "", nil, key("2001:db8::9", pUDP)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			class, reason, victim, scan := classifyOne(t, tc.link, tc.frame)
			if class != tc.class || reason != tc.reason {
				t.Errorf("class %q reason %q, want %q %q", class, reason, tc.class, tc.reason)
			}
			if (victim == nil) != (tc.victim == nil) || victim != nil && *victim != *tc.victim {
				t.Errorf("victim %v, want %v", victim, tc.victim)
			}
			if (scan == nil) != (tc.scan == nil) || scan != nil && *scan != *tc.scan {
				t.Errorf("scan source %v, want %v", scan, tc.scan)
			}
		})
	}
}

// feed sends n SYNs from src to successive addresses of 10.9.0.0/16 on port, built by
// mk, one second apart, and returns the report.
func feed(opts Options, n int, mk func(i int, dst uint32) []byte) Report {
	c := NewClassifier(opts)
	for i := range n {
		c.Packet(int64(1_600_000_000+i)*1e9, LinkEthernet, mk(i, 0x0a090000+uint32(i)+1))
	}
	return c.Report()
}

func ip4String(v uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b).String()
}

func TestToolFingerprints(t *testing.T) {
	const src = "198.51.7.9"
	probe := func(id uint16, seq uint32, win uint16, opts []byte, dst uint32, dport uint16) []byte {
		return ether(ip4Hdr{src: src, dst: ip4String(dst), proto: protoTCP, id: id, ttl: 250}.packet(
			tcpHdr{sport: 61000, dport: dport, seq: seq, flags: flagSYN, win: win, opts: opts}.bytes()))
	}
	mss := []byte{2, 4, 5, 0xb4}
	cases := []struct {
		name string
		mk   func(i int, dst uint32) []byte
		tool string
	}{
		{"zmap: IP ID 54321", func(i int, dst uint32) []byte { return probe(54321, uint32(i*7919), 65535, nil, dst, 23) }, "zmap"},
		{"masscan: IP ID = dst ^ port ^ seq", func(i int, dst uint32) []byte {
			seq := uint32(i) * 2654435761
			return probe(uint16(dst^23^seq), seq, 1024, nil, dst, 23)
		}, "masscan"},
		{"mirai: seq = dst", func(i int, dst uint32) []byte { return probe(uint16(i*31), dst, 14600, nil, dst, 23) }, "mirai"},
		{"nmap: window 1024 and only MSS", func(i int, dst uint32) []byte { return probe(uint16(i*31), uint32(i*7919), 1024, mss, dst, 23) }, "nmap"},
		{"window 1024 with more options is not nmap", func(i int, dst uint32) []byte {
			return probe(uint16(i*31), uint32(i*7919), 1024, []byte{2, 4, 5, 0xb4, 1, 1, 4, 2}, dst, 23)
		}, ""},
		{"one stray probe in 30 still names mirai", func(i int, dst uint32) []byte {
			if i == 7 {
				return probe(1, 1, 14600, nil, dst, 23)
			}
			return probe(uint16(i*31), dst, 14600, nil, dst, 23)
		}, "mirai"},
		{"half mirai is nothing", func(i int, dst uint32) []byte {
			if i%2 == 0 {
				return probe(1, uint32(i), 14600, nil, dst, 23)
			}
			return probe(uint16(i*31), dst, 14600, nil, dst, 23)
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := feed(Options{}, 30, tc.mk)
			if len(r.Scans) != 1 {
				t.Fatalf("scans = %+v (other %v)", r.Scans, r.OtherReasons)
			}
			if s := r.Scans[0]; s.Tool != tc.tool || s.Kind != "horizontal" || s.Source != src {
				t.Errorf("scan %+v, want tool %q", s, tc.tool)
			}
		})
	}
}

func TestScanKinds(t *testing.T) {
	const src = "198.51.7.9"
	cases := []struct {
		name    string
		n       int
		port    func(i int) uint16
		oneHost bool
		kind    string
	}{
		{"horizontal: 25 hosts, one port", 25, func(int) uint16 { return 445 }, false, "horizontal"},
		{"24 hosts is not yet a scan", 24, func(int) uint16 { return 445 }, false, ""},
		{"strobe: 30 hosts, 3 ports", 30, func(i int) uint16 { return []uint16{22, 80, 443}[i%3] }, false, "strobe"},
		{"block: 40 hosts, 20 ports", 40, func(i int) uint16 { return uint16(1000 + i%20) }, false, "block"},
		{"vertical: one host, 15 ports", 15, func(i int) uint16 { return uint16(1 + i) }, true, "vertical"},
		{"one host, 14 ports is not yet a scan", 14, func(i int) uint16 { return uint16(1 + i) }, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := feed(Options{}, tc.n, func(i int, dst uint32) []byte {
				if tc.oneHost {
					dst = 0x0a090001
				}
				return syn4(src, ip4String(dst), tc.port(i))
			})
			got := ""
			if len(r.Scans) == 1 {
				got = r.Scans[0].Kind
			} else if len(r.Scans) > 1 {
				t.Fatalf("scans = %+v", r.Scans)
			}
			if got != tc.kind {
				t.Errorf("kind %q, want %q", got, tc.kind)
			}
		})
	}
	t.Run("a source that only answers is never a scanner", func(t *testing.T) {
		r := feed(Options{}, 100, func(i int, dst uint32) []byte {
			return tcp4(src, ip4String(dst), tcpHdr{sport: uint16(1 + i), dport: 4000, flags: flagSYN | flagACK})
		})
		if len(r.Scans) != 0 || r.Classes.Backscatter != 100 {
			t.Errorf("scans %+v, backscatter %d", r.Scans, r.Classes.Backscatter)
		}
	})
	t.Run("idle timeout splits a scan", func(t *testing.T) {
		c := NewClassifier(Options{ScanHosts: 5, ScanIdle: time.Minute})
		for i := range 10 {
			ts := int64(1_600_000_000+i) * 1e9
			if i >= 5 {
				ts += int64(2 * time.Minute)
			}
			c.Packet(ts, LinkEthernet, syn4(src, ip4String(0x0a090001+uint32(i)), 80))
		}
		r := c.Report()
		if len(r.Scans) != 2 || r.Scans[0].Targets != 5 || r.Scans[1].Targets != 5 {
			t.Errorf("scans = %+v", r.Scans)
		}
	})
}

func TestDoSThresholds(t *testing.T) {
	const victim = "203.0.113.80"
	synack := func(dport uint16) []byte {
		return tcp4(victim, "192.0.2.1", tcpHdr{sport: 80, dport: dport, flags: flagSYN | flagACK})
	}
	run := func(opts Options, times []time.Duration) Report {
		c := NewClassifier(opts)
		for i, d := range times {
			c.Packet(int64(1_600_000_000)*1e9+int64(d), LinkEthernet, synack(uint16(1000+i)))
		}
		return c.Report()
	}
	every := func(n int, gap time.Duration) []time.Duration {
		var out []time.Duration
		for i := range n {
			out = append(out, time.Duration(i)*gap)
		}
		return out
	}
	cases := []struct {
		name    string
		opts    Options
		times   []time.Duration
		attacks int
		maxPPM  uint64
	}{
		{"40 packets at 1/s for 40 s is too short", Options{}, every(40, time.Second), 0, 0},
		{"90 packets at 1/s: 60 per minute, 89 s", Options{}, every(90, time.Second), 1, 60},
		{"100 packets at 1 per 3 s: 20 per minute is too slow", Options{}, every(100, 3*time.Second), 0, 0},
		{"the same at --dos-ppm 20", Options{DoSPPM: 20}, every(100, 3*time.Second), 1, 20},
		{"a burst of 30 within a minute then a trickle", Options{},
			append(every(30, time.Second), 3*time.Minute, 4*time.Minute), 1, 30},
		{"a gap past the 300 s idle timeout splits the vector", Options{DoSPackets: 10, DoSDuration: 5 * time.Second, DoSPPM: 5},
			append(every(20, time.Second), every20From(20*time.Second+301*time.Second)...), 2, 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(tc.opts, tc.times)
			if len(r.Attacks) != tc.attacks {
				t.Fatalf("attacks = %+v", r.Attacks)
			}
			if tc.attacks > 0 && r.Attacks[0].MaxPPM != tc.maxPPM {
				t.Errorf("max_ppm = %d, want %d", r.Attacks[0].MaxPPM, tc.maxPPM)
			}
		})
	}
}

func every20From(start time.Duration) []time.Duration {
	var out []time.Duration
	for i := range 20 {
		out = append(out, start+time.Duration(i)*time.Second)
	}
	return out
}

// A flood from ~10 million random sources, half probes and half backscatter, must keep
// the state tables at their cap and the heap bounded, and count what was evicted,
// while a real scanner probing throughout the flood survives it.
func TestBoundedStateUnderRandomSourceFlood(t *testing.T) {
	n := 10_000_000
	if testing.Short() {
		n = 1_000_000
	}
	opts := Options{MaxSources: 50_000}
	c := NewClassifier(opts)
	syn := syn4("1.2.3.4", "10.9.0.1", 23)
	synack := tcp4("1.2.3.4", "10.9.0.1", tcpHdr{sport: 80, dport: 4000, flags: flagSYN | flagACK})
	ipOff := 14
	scanner := syn4("198.51.7.9", "10.9.0.1", 445)
	rng := uint64(1)
	var heapAtTenth uint64
	ts := int64(1_600_000_000) * 1e9
	for i := range n {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		f := syn
		if i%2 == 1 {
			f = synack
		}
		binary.BigEndian.PutUint32(f[ipOff+12:], uint32(rng>>32)|0x01000000)
		f[ipOff+15] |= 1 // avoid the .0/.255 spoofing filters
		if f[ipOff+15] == 0xff {
			f[ipOff+15] = 0xfe
		}
		binary.BigEndian.PutUint32(f[ipOff+16:], 0x0a090000|uint32(rng&0xffff))
		ts += 1000 // 1 Mpps: the whole flood is inside one scan-idle window
		c.Packet(ts, LinkEthernet, f)
		if i%1000 == 0 {
			binary.BigEndian.PutUint32(scanner[ipOff+16:], 0x0a0a0000|uint32(i/1000))
			c.Packet(ts, LinkEthernet, scanner)
		}
		if i == n/10 {
			heapAtTenth = heapInUse()
		}
	}
	heapEnd := heapInUse()
	r := c.Report()
	t.Logf("%d packets: %d sources, %d victims, %d evicted; heap %d MiB at 10%%, %d MiB at the end, %d bytes per tracked entry",
		r.Packets, r.Sources, r.Victims, r.Evicted, heapAtTenth>>20, heapEnd>>20, heapEnd/uint64(r.Sources+r.Victims))
	if r.Sources > opts.MaxSources || r.Victims > opts.MaxSources {
		t.Errorf("tables above the cap: %d sources, %d victims", r.Sources, r.Victims)
	}
	// Random sources repeat now and then (the birthday bound), so allow 1% fewer.
	if want := uint64(n - 2*opts.MaxSources); r.Evicted < want*99/100 || r.Evicted > want {
		t.Errorf("evicted = %d, want about %d", r.Evicted, want)
	}
	if heapEnd > heapAtTenth+heapAtTenth/2+16<<20 {
		t.Errorf("heap grew from %d MiB to %d MiB while the tables were full", heapAtTenth>>20, heapEnd>>20)
	}
	if heapEnd > 512<<20 {
		t.Errorf("heap %d MiB for %d tracked entries", heapEnd>>20, r.Sources+r.Victims)
	}
	found := false
	for _, s := range r.Scans {
		if s.Source == "198.51.7.9" && s.Kind == "horizontal" && s.Targets > uint64(n/1000)*9/10 {
			found = true
		}
	}
	if !found {
		t.Errorf("the real scanner did not survive the flood (evicted %d)", r.Evicted)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// FuzzDecodeFrame: no frame, of any link type, may panic the decoder or classifier.
func FuzzDecodeFrame(f *testing.F) {
	// Seeds: every frame of the shared captures, plus hand-made corner cases.
	for _, name := range []string{"testdata/port_scan.pcap", "testdata/multiport_scan.pcap", "testdata/445_scan.pcap", "testdata/scan_with_zero_windows.pcap"} {
		for _, r := range readAll(f, name) {
			f.Add(uint32(LinkEthernet), r.data)
		}
	}
	f.Add(uint32(LinkRaw), ip6Packet("2001:db8::1", "2001:db8::2", 0, []byte{protoTCP, 200, 0, 0})) // hop-by-hop longer than the packet
	f.Add(uint32(LinkSLL2), make([]byte, 20))                                                       // cooked header only
	f.Add(uint32(LinkEthernet), ether(ip4Hdr{src: "1.2.3.4", dst: "5.6.7.8", proto: protoICMP}.packet(icmpBytes(3, 1, []byte{0x4f}))))
	f.Add(uint32(LinkEthernet), sctp4("1.2.3.4", "5.6.7.8", 1, 2905, 0, sctpInit))                            // SCTP INIT
	f.Add(uint32(LinkRaw), ip4Hdr{src: "1.2.3.4", dst: "5.6.7.8", proto: protoSCTP}.packet(make([]byte, 12))) // SCTP without a chunk
	f.Fuzz(func(t *testing.T, link uint32, frame []byte) {
		c := NewClassifier(Options{})
		c.Packet(0, link, frame)
		if c.classes[0]+c.classes[1]+c.classes[2] != 1 {
			t.Fatalf("packet counted %v times", c.classes)
		}
	})
}

// FuzzReader: no file may panic the capture reader, hang it, or make it allocate
// more than the record bound.
func FuzzReader(f *testing.F) {
	for _, name := range []string{"testdata/port_scan.pcap", "testdata/445_scan.pcap", "testdata/scan_with_zero_windows.pcap"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2]) // cut in a record
	}
	recs := readAll(f, "testdata/port_scan.pcap")
	f.Add(pcapngFile(binary.LittleEndian, LinkEthernet, 6, recs[:3], nil))
	f.Add(pcapngFile(binary.BigEndian, LinkEthernet, 9, recs[:2], nil))
	f.Add([]byte{0x0a, 0x0d, 0x0d, 0x0a, 0xff, 0xff, 0xff, 0xff}) // pcapng with a huge block length
	f.Fuzz(func(t *testing.T, data []byte) {
		rd, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		var rec Record
		for range len(data) + 1 {
			if err := rd.Next(&rec); err != nil {
				return
			}
			if len(rec.Data) > maxRecord {
				t.Fatalf("record of %d bytes", len(rec.Data))
			}
		}
		t.Fatal("reader returned more records than the file has bytes")
	})
}
