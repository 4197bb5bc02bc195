//go:build !race

// The race detector allocates on its own account, so allocation counts mean
// nothing under it: these tests are built without it only (CI runs them in its
// plain go test).

package telescope

import (
	"encoding/binary"
	"testing"
	"time"
)

// Decoding and classifying a packet of a known source or victim allocates nothing.
func TestPacketDoesNotAllocate(t *testing.T) {
	recs := readAll(t, "testdata/backscatter.trace")
	c := NewClassifier(Options{})
	for _, r := range recs {
		c.Packet(r.ts, LinkEthernet, r.data)
	}
	i := 0
	allocs := testing.AllocsPerRun(2000, func() {
		r := recs[i%len(recs)]
		c.Packet(r.ts, LinkEthernet, r.data)
		i++
	})
	if allocs != 0 {
		t.Errorf("%.2f allocations per packet, want 0", allocs)
	}
	var p packet
	frame := ether(ip6Packet("2001:db8::1", "2001:db8::77", protoICMPv6, icmpBytes(1, 4,
		ip6Packet("2001:db8::77", "2001:db8:1::5", protoTCP, tcpHdr{sport: 1, dport: 2}.bytes()[:8]))))
	if a := testing.AllocsPerRun(1000, func() { decodeFrame(LinkEthernet, frame, &p) }); a != 0 {
		t.Errorf("decoding an ICMPv6 error allocates %.2f times", a)
	}
}

// TestReadAndClassifyDoesNotAllocate: the whole per-packet path of analyze, the
// capture reader with the classifier behind it, allocates nothing once the sources
// and victims are known, for pcap and pcapng of either byte order. The capture is
// endless: backscatter.trace's packets a millisecond apart, over and over, so that
// no victim goes idle and every record is read through the reader's refills.
func TestReadAndClassifyDoesNotAllocate(t *testing.T) {
	recs := readAll(t, "testdata/backscatter.trace")
	dense := make([]testRec, len(recs))
	for i, r := range recs {
		dense[i] = testRec{ts: recs[0].ts + int64(i)*int64(time.Millisecond), data: r.data}
	}
	tests := []struct {
		name       string
		head, file []byte // the file header, and the file whose records repeat after it
	}{
		{"pcap little-endian microseconds", pcapFile(binary.LittleEndian, false, LinkEthernet, nil, nil),
			pcapFile(binary.LittleEndian, false, LinkEthernet, dense, nil)},
		{"pcap big-endian nanoseconds", pcapFile(binary.BigEndian, true, LinkEthernet, nil, nil),
			pcapFile(binary.BigEndian, true, LinkEthernet, dense, nil)},
		{"pcapng little-endian", pcapngFile(binary.LittleEndian, LinkEthernet, 6, nil, nil),
			pcapngFile(binary.LittleEndian, LinkEthernet, 6, dense, nil)},
		{"pcapng big-endian nanoseconds", pcapngFile(binary.BigEndian, LinkEthernet, 9, nil, nil),
			pcapngFile(binary.BigEndian, LinkEthernet, 9, dense, nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rd, err := NewReader(&cycleReader{head: tc.head, body: tc.file[len(tc.head):]})
			if err != nil {
				t.Fatal(err)
			}
			c := NewClassifier(Options{})
			var rec Record
			next := func() {
				if err := rd.Next(&rec); err != nil {
					t.Fatal(err)
				}
				c.Packet(rec.Timestamp, rec.LinkType, rec.Data)
			}
			for range 2 * len(recs) {
				next()
			}
			if a := testing.AllocsPerRun(3*len(recs), next); a != 0 {
				t.Errorf("%.4f allocations per packet, want 0", a)
			}
			if r := c.Report(); r.Packets < 5*uint64(len(recs)) || r.Classes.Backscatter < r.Packets*9/10 {
				t.Errorf("read %d packets, %d of them backscatter: the capture was not read as written", r.Packets, r.Classes.Backscatter)
			}
		})
	}
}

// cycleReader reads head, then body over and over, in reads of odd sizes so that
// records straddle the reader's refills.
type cycleReader struct {
	head, body []byte
	off        int // in head, then in body
	inBody     bool
}

func (r *cycleReader) Read(p []byte) (int, error) {
	p = p[:min(len(p), 100_003)]
	n := 0
	for n < len(p) {
		src := r.head
		if r.inBody {
			src = r.body
		}
		m := copy(p[n:], src[r.off:])
		n += m
		r.off += m
		if r.off == len(src) {
			r.off, r.inBody = 0, true
		}
	}
	return n, nil
}
