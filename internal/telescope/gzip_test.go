package telescope

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// badCRC flips a bit of the CRC-32 in the trailer of gzip stream b.
func badCRC(b []byte) []byte {
	b = bytes.Clone(b)
	b[len(b)-8] ^= 1
	return b
}

// TestGzippedCaptures: a gzipped pcap or pcapng reports what the plain file
// does, told by its first bytes whatever its name, from a file or stdin; a gzip
// stream cut short reports the packets before the cut with a warning.
func TestGzippedCaptures(t *testing.T) {
	opts := Options{ScanHosts: 5, ScanIdle: 2 * time.Hour}
	recs := readAll(t, "testdata/multiport_scan.pcap")
	plain, _ := os.ReadFile("testdata/multiport_scan.pcap")
	ng := pcapngFile(binary.LittleEndian, LinkEthernet, 6, recs, nil)
	want, _ := json.Marshal(analyzeJSON(t, opts, "testdata/multiport_scan.pcap"))
	cases := []struct {
		name    string
		file    string // "-": stdin
		data    []byte
		packets int    // 0: the whole report must equal the plain file's
		warn    string // in the warnings
	}{
		{name: "pcap.gz", file: "c.pcap.gz", data: gzipped(t, plain)},
		{name: "pcapng.gz", file: "c.pcapng.gz", data: gzipped(t, ng)},
		{name: "gzip named .pcap", file: "c.pcap", data: gzipped(t, plain)},
		{name: "gzip on stdin", file: "-", data: gzipped(t, ng)},
		{name: "two gzip members", file: "c.pcap.gz", data: append(gzipped(t, plain[:len(plain)/2]), gzipped(t, plain[len(plain)/2:])...)},
		{name: "gzip cut short", file: "c.pcap.gz", data: gzipped(t, plain)[:len(gzipped(t, plain))*2/3], packets: -1, warn: "reporting the"},
		// A damaged end is what a plain capture's damaged tail is: the packets read
		// before it are reported, with a warning naming it, not thrown away.
		{name: "gzip checksum wrong", file: "c.pcap.gz", data: badCRC(gzipped(t, plain)), warn: "checksum"},
		{name: "garbage after the gzip member", file: "c.pcap.gz", data: append(gzipped(t, plain), "not gzip at all"...), warn: "gzip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name, stdin := tc.file, io.Reader(strings.NewReader(""))
			if name == "-" {
				stdin = bytes.NewReader(tc.data)
			} else {
				name = filepath.Join(t.TempDir(), tc.file)
				os.WriteFile(name, tc.data, 0o644)
			}
			var warn bytes.Buffer
			c := NewClassifier(opts)
			if err := AnalyzeFile(c, name, stdin, &warn); err != nil {
				t.Fatalf("analyze: %v", err)
			}
			r := c.Report()
			if !strings.Contains(warn.String(), tc.warn) {
				t.Errorf("warnings %q lack %q", warn.String(), tc.warn)
			}
			if tc.packets < 0 {
				if r.Packets == 0 || r.Packets >= 16 {
					t.Errorf("cut stream: %d packets, want some but not all 16", r.Packets)
				}
				return
			}
			var buf bytes.Buffer
			r.WriteJSON(&buf)
			var back Report
			json.Unmarshal(buf.Bytes(), &back)
			got, _ := json.Marshal(back)
			if !bytes.Equal(got, want) {
				t.Errorf("report differs from the plain file's:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestGzipNotACapture(t *testing.T) {
	f := filepath.Join(t.TempDir(), "notes.txt.gz")
	os.WriteFile(f, gzipped(t, []byte("hello, these are not packets\n")), 0o644)
	_, _, err := analyze(t, Options{}, f)
	if err == nil || !strings.Contains(err.Error(), "not a pcap or pcapng capture") {
		t.Errorf("gzipped text: %v, want not a capture", err)
	}
}

// TestProgress: the callback sees the bytes read grow to the file's size and the
// packets counted, and is told once at the end.
func TestProgress(t *testing.T) {
	recs := readAll(t, "testdata/multiport_scan.pcap")
	var many []testRec
	for i := range 3 * progressEvery / len(recs) {
		for _, r := range recs {
			many = append(many, testRec{ts: r.ts + int64(i)*int64(time.Second), data: r.data})
		}
	}
	data := pcapFile(binary.LittleEndian, false, LinkEthernet, many, nil)
	f := filepath.Join(t.TempDir(), "big.pcap.gz")
	gz := gzipped(t, data)
	os.WriteFile(f, gz, 0o644)
	type call struct {
		read, size int64
		packets    uint64
		done       bool
	}
	var calls []call
	c := NewClassifier(Options{})
	err := AnalyzeFileProgress(c, f, nil, io.Discard, func(read, size int64, packets uint64, done bool) {
		calls = append(calls, call{read, size, packets, done})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) < 3 || !calls[len(calls)-1].done {
		t.Fatalf("calls %+v: want a few, the last one done", calls)
	}
	last := calls[len(calls)-1]
	if last.read != int64(len(gz)) || last.size != int64(len(gz)) || last.packets != uint64(len(many)) {
		t.Errorf("last call %+v: want %d of %d bytes, %d packets", last, len(gz), len(gz), len(many))
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].read < calls[i-1].read || calls[i].packets <= calls[i-1].packets && !calls[i].done {
			t.Errorf("progress went backwards: %+v then %+v", calls[i-1], calls[i])
		}
	}
}

func FuzzAnalyzeStdin(f *testing.F) {
	plain, _ := os.ReadFile("testdata/multiport_scan.pcap")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	f.Add(plain)                    // a plain capture
	f.Add(gz.Bytes())               // the same, gzipped
	f.Add(gz.Bytes()[:gz.Len()/2])  // gzip cut short
	f.Add([]byte{0x1f, 0x8b})       // gzip magic alone
	f.Add([]byte{0x1f, 0x8b, 8, 0}) // a header cut short
	f.Fuzz(func(t *testing.T, data []byte) {
		c := NewClassifier(Options{})
		// Any input ends in a report or an error, never a panic or a hang.
		_ = AnalyzeFileProgress(c, "-", bytes.NewReader(data), io.Discard, func(int64, int64, uint64, bool) {})
		c.Report()
	})
}
