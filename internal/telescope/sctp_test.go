package telescope

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sctpBytes is an SCTP packet of one chunk of type chunk: an INIT carries its
// mandatory fields (RFC 9260 §3.3.2), other chunks only their header.
func sctpBytes(sport, dport uint16, vtag uint32, chunk uint8) []byte {
	body := 0
	if chunk == sctpInit || chunk == sctpInitAck {
		body = 16
	}
	b := make([]byte, 12+4+body)
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], vtag)
	b[12] = chunk
	binary.BigEndian.PutUint16(b[14:], uint16(4+body))
	if body > 0 {
		binary.BigEndian.PutUint32(b[16:], 0x01020304) // initiate tag
		binary.BigEndian.PutUint32(b[20:], 65535)      // receiver window
		binary.BigEndian.PutUint16(b[24:], 10)         // outbound streams
		binary.BigEndian.PutUint16(b[26:], 10)         // inbound streams
	}
	return b
}

func sctp4(src, dst string, sport, dport uint16, vtag uint32, chunk uint8) []byte {
	return ether(ip4Hdr{src: src, dst: dst, proto: protoSCTP}.packet(sctpBytes(sport, dport, vtag, chunk)))
}

func TestClassifySCTP(t *testing.T) {
	const src, dst = "198.51.7.9", "192.0.2.77"
	quotedSCTP := ip4Hdr{src: dst, dst: "203.0.113.5", proto: protoSCTP}.packet(sctpBytes(5000, 2905, 0, sctpInit)[:8])
	cases := []struct {
		name         string
		frame        []byte
		class        string
		reason       string
		victim, scan *flowKey
	}{
		{"INIT is a probe", sctp4(src, dst, 40000, 2905, 0, sctpInit), "scan", "", nil, key(src, pSCTP)},
		{"COOKIE ECHO is a probe (nmap -sZ)", sctp4(src, dst, 40000, 2905, 7, sctpCookieEcho), "scan", "", nil, key(src, pSCTP)},
		{"INIT ACK is backscatter from its victim", sctp4(src, dst, 2905, 40000, 7, sctpInitAck), "backscatter", "", key(src, pSCTP), nil},
		{"ABORT is backscatter", sctp4(src, dst, 2905, 40000, 7, sctpAbort), "backscatter", "", key(src, pSCTP), nil},
		{"DATA outside an association is other", sctp4(src, dst, 2905, 40000, 7, 0), "other", "sctp-other", nil, nil},
		{"SCTP port 0", sctp4(src, dst, 0, 2905, 0, sctpInit), "other", "spoofed:sctp-port-0", nil, nil},
		{"SCTP header without a chunk", ether(ip4Hdr{src: src, dst: dst, proto: protoSCTP}.packet(make([]byte, 12))), "other", "malformed", nil, nil},
		{"IPv6 INIT", ether(ip6Packet("2001:db8::9", "2001:db8:1::1", protoSCTP, sctpBytes(1, 36412, 0, sctpInit))), "scan", "", nil, key("2001:db8::9", pSCTP)},
		{"ICMP unreachable quoting SCTP: victim is the quoted destination",
			ether(ip4Hdr{src: src, dst: dst, proto: protoICMP}.packet(icmpBytes(3, 2, quotedSCTP))), "backscatter", "", key("203.0.113.5", pSCTP), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			class, reason, victim, scan := classifyOne(t, LinkEthernet, tc.frame)
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

// A capture of an SCTP INIT sweep of 40 addresses on M3UA's port and of two victims'
// INIT ACK and ABORT backscatter comes out in the same tables as TCP, named sctp.
func TestSCTPCapture(t *testing.T) {
	name := filepath.Join(t.TempDir(), "sctp.pcap")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w, err := newPcapWriter(f, LinkEthernet)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	write := func(ts int64, frame []byte) {
		if err := w.WritePacket(ts, frame); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 40 {
		write(t0+int64(i)*int64(time.Second), sctp4("198.51.100.7", ip4String(0x0a090000+uint32(i)+1), 40000, 2905, 0, sctpInit))
	}
	// 1 packet every 2 s for 3 minutes: 90 packets, 30 a minute.
	for i := range 90 {
		ts := t0 + int64(i)*int64(2*time.Second)
		write(ts, sctp4("203.0.113.50", ip4String(0x0a090100+uint32(i)+1), 38412, uint16(30000+i), 0x1234, sctpInitAck))
		write(ts, sctp4("203.0.113.60", ip4String(0x0a090200+uint32(i)+1), 36412, uint16(30000+i), 0, sctpAbort))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	r := analyzeJSON(t, Options{}, name)
	if r.Classes.Scan != 40 || r.Classes.Backscatter != 180 || r.Classes.Other != 0 {
		t.Errorf("classes %+v, want 40 scan and 180 backscatter", r.Classes)
	}
	if len(r.Scans) != 1 {
		t.Fatalf("scans = %+v", r.Scans)
	}
	if s := r.Scans[0]; s.Source != "198.51.100.7" || s.Protocol != "sctp" || s.Kind != "horizontal" ||
		s.Targets != 40 || len(s.Ports) != 1 || s.Ports[0] != 2905 {
		t.Errorf("scan = %+v", s)
	}
	want := map[string]uint16{"203.0.113.50": 38412, "203.0.113.60": 36412}
	if len(r.Attacks) != 2 {
		t.Fatalf("attacks = %+v", r.Attacks)
	}
	for _, a := range r.Attacks {
		if a.Protocol != "sctp" || a.Packets != 90 || len(a.Ports) != 1 || a.Ports[0] != want[a.Victim] {
			t.Errorf("attack = %+v", a)
		}
	}
	var table strings.Builder
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(table.String(), "  sctp  "); n != 3 {
		t.Errorf("table names sctp %d times, want 3 rows:\n%s", n, table.String())
	}
}
