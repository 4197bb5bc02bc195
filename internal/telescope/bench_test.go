package telescope

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// BenchmarkAnalyze reads and classifies backscatter.trace from memory: the whole
// per-packet path of `analyze` (reader, decoder, classifier) without the disk.
func BenchmarkAnalyze(b *testing.B) {
	data, err := os.ReadFile("testdata/backscatter.trace")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var pkts int
	for b.Loop() {
		c := NewClassifier(Options{})
		rd, err := NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		var rec Record
		for rd.Next(&rec) == nil {
			c.Packet(rec.Timestamp, rec.LinkType, rec.Data)
			pkts++
		}
	}
	b.ReportMetric(float64(pkts)/b.Elapsed().Seconds()/1e6, "Mpps")
}

// BenchmarkDecode is the decoder alone, per packet.
func BenchmarkDecode(b *testing.B) {
	recs := readAll(b, "testdata/backscatter.trace")
	var p packet
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		decodeFrame(LinkEthernet, recs[i%len(recs)].data, &p)
		i++
	}
}

// The repeated capture the benchmark builds reads back as one long capture with the
// same per-copy classification.
func TestRepeatCapture(t *testing.T) {
	out := filepath.Join(t.TempDir(), "big.pcap")
	if err := repeatCapture("testdata/backscatter.trace", out, 3*4771+10); err != nil {
		t.Fatal(err)
	}
	r := analyzeJSON(t, Options{}, out)
	if r.Packets != 3*4771+10 || r.Classes.Backscatter < 3*4700 {
		t.Errorf("packets %d backscatter %d", r.Packets, r.Classes.Backscatter)
	}
	if d := r.End.Sub(r.Start).Hours(); d < 3*23.9 {
		t.Errorf("copies overlap: the capture spans %.1f h", d)
	}
	// The pcapng copy holds the same packets with the same timestamps.
	ng := filepath.Join(t.TempDir(), "big.pcapng")
	if err := repeatCapture("testdata/backscatter.trace", ng, 3*4771+10); err != nil {
		t.Fatal(err)
	}
	if head, _ := os.ReadFile(ng); len(head) < 4 || string(head[:4]) != "\x0a\x0d\x0d\x0a" {
		t.Errorf("%s does not start with a pcapng section header", ng)
	}
	if rng := analyzeJSON(t, Options{}, ng); !reflect.DeepEqual(rng, r) {
		t.Errorf("the pcapng copy reports\n%+v\nthe pcap copy\n%+v", rng, r)
	}
	if err := repeatCapture("testdata/README.md", out, 5); err == nil {
		t.Error("repeating a non-capture succeeded")
	}
}
