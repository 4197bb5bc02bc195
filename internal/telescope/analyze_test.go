package telescope

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func runAnalyze(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = AnalyzeCommand(args, &o, &e)
	return o.String(), e.String(), code
}

func analyzeJSON(t *testing.T, args ...string) Report {
	t.Helper()
	out, errOut, code := runAnalyze(t, append(args, "--format", "json")...)
	if code != 0 {
		t.Fatalf("analyze %v: exit %d: %s", args, code, errOut)
	}
	var r Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("analyze %v: bad JSON: %v\n%s", args, err, out)
	}
	return r
}

// The acceptance cases on the real captures from NCSA's scan detector.
func TestSharedCaptures(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		check func(t *testing.T, r Report)
	}{
		{"port_scan is a vertical scan", []string{"testdata/port_scan.pcap", "--scan-ports", "5"}, func(t *testing.T, r Report) {
			if r.Packets != 10 || r.Classes.Scan != 10 {
				t.Errorf("packets %d, scan class %d; want 10, 10", r.Packets, r.Classes.Scan)
			}
			if len(r.Scans) != 1 {
				t.Fatalf("scans = %+v", r.Scans)
			}
			s := r.Scans[0]
			if s.Source != "192.168.2.154" || s.Kind != "vertical" || s.Protocol != "tcp" || s.Targets != 1 || len(s.Ports) != 10 {
				t.Errorf("scan = %+v", s)
			}
		}},
		{"port_scan at the default 15 ports is no scan", []string{"testdata/port_scan.pcap"}, func(t *testing.T, r Report) {
			if len(r.Scans) != 0 {
				t.Errorf("scans = %+v", r.Scans)
			}
		}},
		{"445_scan slow horizontal scan at 30m idle", []string{"--scan-hosts", "5", "--scan-idle", "30m", "testdata/445_scan.pcap"}, func(t *testing.T, r Report) {
			if len(r.Scans) != 1 {
				t.Fatalf("scans = %+v", r.Scans)
			}
			s := r.Scans[0]
			if s.Source != "176.192.150.3" || s.Kind != "horizontal" || !slices.Equal(s.Ports, []uint16{445}) ||
				s.Targets != 9 || s.Packets != 21 {
				t.Errorf("scan = %+v", s)
			}
			if d := s.End.Sub(s.Start); d.Hours() < 1.7 || d.Hours() > 1.8 {
				t.Errorf("scan lasts %v, want about 1.7 h", d)
			}
		}},
		{"445_scan at the default idle is no scan", []string{"testdata/445_scan.pcap", "--scan-hosts", "5"}, func(t *testing.T, r Report) {
			if len(r.Scans) != 0 {
				t.Errorf("scans = %+v", r.Scans)
			}
			if r.Classes.Scan != 21 {
				t.Errorf("probes = %d, want 21", r.Classes.Scan)
			}
		}},
		{"backscatter.trace at the defaults", []string{"testdata/backscatter.trace"}, func(t *testing.T, r Report) {
			if r.Packets != 4771 || r.Classes.Backscatter < 4700 {
				t.Errorf("packets %d, backscatter %d; want 4771, ≥4700", r.Packets, r.Classes.Backscatter)
			}
			if r.Classes.Backscatter+r.Classes.Scan+r.Classes.Other != r.Packets {
				t.Errorf("classes %+v do not add up to %d", r.Classes, r.Packets)
			}
			if len(r.Attacks) != 0 {
				t.Errorf("attacks = %+v", r.Attacks)
			}
			if len(r.Scans) != 0 {
				t.Errorf("backscatter called a scan: %+v", r.Scans)
			}
		}},
		{"backscatter.trace at --dos-ppm 5", []string{"testdata/backscatter.trace", "--dos-ppm", "5"}, func(t *testing.T, r Report) {
			if len(r.Attacks) == 0 {
				t.Fatal("no attack")
			}
			for _, a := range r.Attacks {
				if a.Victim != "202.229.120.98" || a.Protocol != "tcp" || !slices.Equal(a.Ports, []uint16{80}) {
					t.Errorf("attack = %+v", a)
				}
				if a.MaxPPM < 5 || a.MaxPPM > 12 || a.Packets < 25 || a.End.Sub(a.Start).Seconds() < 60 {
					t.Errorf("attack below the thresholds or above the capture's rate: %+v", a)
				}
				// Without --dark or --size, n is the distinct destinations seen: about
				// the 512 addresses of the trace's /23.
				if r.TelescopeSize < 500 || r.TelescopeSize > 520 {
					t.Errorf("telescope size = %g, want about 512", r.TelescopeSize)
				}
				rate := float64(a.Packets) / a.End.Sub(a.Start).Seconds()
				if want := rate * (1 << 32) / r.TelescopeSize; a.EstPPS < want*0.999 || a.EstPPS > want*1.001 {
					t.Errorf("est_pps = %g, want %g", a.EstPPS, want)
				}
			}
		}},
		{"backscatter.trace with --dark sets n", []string{"testdata/backscatter.trace", "--dos-ppm", "5", "--dark", "192.150.186.0/23"}, func(t *testing.T, r Report) {
			if r.TelescopeSize != 512 {
				t.Errorf("telescope size = %g, want 512", r.TelescopeSize)
			}
			// Outbound packets from the telescope's own addresses are not to it.
			if r.OtherReasons["not-dark"] == 0 || len(r.Attacks) == 0 {
				t.Errorf("not-dark %d, attacks %d", r.OtherReasons["not-dark"], len(r.Attacks))
			}
		}},
		{"--size overrides n", []string{"testdata/backscatter.trace", "--dos-ppm", "5", "--size", "256"}, func(t *testing.T, r Report) {
			if r.TelescopeSize != 256 || len(r.Attacks) == 0 {
				t.Fatalf("size %g, attacks %d", r.TelescopeSize, len(r.Attacks))
			}
			a := r.Attacks[0]
			if want := float64(a.Packets) / a.End.Sub(a.Start).Seconds() * (1 << 32) / 256; a.EstPPS < want*0.999 || a.EstPPS > want*1.001 {
				t.Errorf("est_pps = %g, want %g", a.EstPPS, want)
			}
		}},
		{"zero windows: same src and dst is spoofed", []string{"testdata/scan_with_zero_windows.pcap", "--scan-hosts", "9"}, func(t *testing.T, r Report) {
			if r.OtherReasons["spoofed:same-src-dst"] != 1 || len(r.Scans) != 1 || r.Scans[0].Targets != 9 || r.Scans[0].Kind != "horizontal" {
				t.Errorf("other %v scans %+v", r.OtherReasons, r.Scans)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, analyzeJSON(t, tc.args...)) })
	}
}

// A later capture given first must not expire the earlier capture's state at once:
// the attacks found do not depend on the order of the files.
func TestFileOrderDoesNotSplitAttacks(t *testing.T) {
	alone := analyzeJSON(t, "testdata/backscatter.trace", "--dos-ppm", "5")
	after := analyzeJSON(t, "testdata/port_scan.pcap", "testdata/backscatter.trace", "--dos-ppm", "5")
	if len(alone.Attacks) == 0 || len(after.Attacks) != len(alone.Attacks) {
		t.Fatalf("attacks alone %d, after a 2017 capture %d", len(alone.Attacks), len(after.Attacks))
	}
	for i := range alone.Attacks {
		if a, b := alone.Attacks[i], after.Attacks[i]; a.Packets != b.Packets || !a.Start.Equal(b.Start) || !a.End.Equal(b.End) {
			t.Errorf("attack %d: alone %+v, after %+v", i, a, b)
		}
	}
}

// Golden outputs in the three formats; -update rewrites them.
func TestGoldenOutputs(t *testing.T) {
	cases := []struct{ name, format string }{
		{"multi.table", "table"}, {"multi.json", "json"}, {"multi.csv", "csv"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runAnalyze(t, "testdata/445_scan.pcap", "testdata/backscatter.trace", "testdata/port_scan.pcap",
				"--scan-hosts", "5", "--scan-ports", "5", "--scan-idle", "30m", "--dos-ppm", "5", "--format", tc.format)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			golden := filepath.Join("testdata", "golden", tc.name)
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if out != string(want) {
				t.Errorf("output differs from %s (run with -update after checking):\n%s", golden, out)
			}
		})
	}
}

func TestAnalyzeBadInput(t *testing.T) {
	dir := t.TempDir()
	notCapture := filepath.Join(dir, "notes.txt")
	os.WriteFile(notCapture, []byte("hello, this is not a capture\n"), 0o644)
	empty := filepath.Join(dir, "empty.pcap")
	os.WriteFile(empty, nil, 0o644)
	orig, _ := os.ReadFile("testdata/port_scan.pcap")
	// Cut the file inside its 6th record: 24-byte header, then 10 records of 16+78 bytes.
	cutAt := 24 + 5*(16+78) + 30
	truncated := filepath.Join(dir, "cut.pcap")
	os.WriteFile(truncated, orig[:cutAt], 0o644)

	t.Run("not a capture is one line and exit 1", func(t *testing.T) {
		out, errOut, code := runAnalyze(t, notCapture)
		if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, notCapture) ||
			!strings.Contains(errOut, "not a pcap or pcapng capture") {
			t.Errorf("exit %d stdout %q stderr %q", code, out, errOut)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		_, errOut, code := runAnalyze(t, empty)
		if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, empty) {
			t.Errorf("exit %d stderr %q", code, errOut)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, errOut, code := runAnalyze(t, filepath.Join(dir, "nope.pcap"))
		if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "nope.pcap") {
			t.Errorf("exit %d stderr %q", code, errOut)
		}
	})
	t.Run("no file", func(t *testing.T) {
		if _, errOut, code := runAnalyze(t, "--format", "json"); code != 1 || !strings.Contains(errOut, "no capture file") {
			t.Errorf("exit %d stderr %q", code, errOut)
		}
	})
	t.Run("bad format", func(t *testing.T) {
		if _, errOut, code := runAnalyze(t, "testdata/port_scan.pcap", "--format", "xml"); code != 1 || !strings.Contains(errOut, "xml") {
			t.Errorf("exit %d stderr %q", code, errOut)
		}
	})
	t.Run("bad dark prefix", func(t *testing.T) {
		if _, errOut, code := runAnalyze(t, "testdata/port_scan.pcap", "--dark", "10.0.0.0/33"); code != 1 || !strings.Contains(errOut, "10.0.0.0/33") {
			t.Errorf("exit %d stderr %q", code, errOut)
		}
	})
	t.Run("truncated capture reports what was read and warns with the offset", func(t *testing.T) {
		out, errOut, code := runAnalyze(t, truncated, "--format", "json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var r Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		if r.Packets != 5 {
			t.Errorf("packets = %d, want the 5 whole records", r.Packets)
		}
		wantOff := "offset " + strconv.Itoa(24+5*(16+78))
		if !strings.Contains(errOut, truncated) || !strings.Contains(errOut, wantOff) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("stderr %q should name %s and %s", errOut, truncated, wantOff)
		}
	})
	t.Run("a second file still counts after a truncated one", func(t *testing.T) {
		r := analyzeJSON(t, truncated, "testdata/port_scan.pcap")
		if r.Packets != 15 {
			t.Errorf("packets = %d, want 15", r.Packets)
		}
	})
	t.Run("a bad file among good ones fails without a report", func(t *testing.T) {
		out, errOut, code := runAnalyze(t, "testdata/port_scan.pcap", notCapture)
		if code != 1 || out != "" || !strings.Contains(errOut, notCapture) {
			t.Errorf("exit %d stdout %q stderr %q", code, out, errOut)
		}
	})
}

// Every container and byte order must yield the same report as the original file.
func TestCaptureFormatsAgree(t *testing.T) {
	recs := readAll(t, "testdata/multiport_scan.pcap")
	want := analyzeJSON(t, "testdata/multiport_scan.pcap", "--scan-hosts", "5", "--scan-idle", "2h")
	if want.Packets != 16 || len(want.Scans) != 1 {
		t.Fatalf("baseline report: %+v", want)
	}
	ipOf := func(frame []byte) []byte {
		off := 14
		for binary.BigEndian.Uint16(frame[off-2:]) == 0x8100 {
			off += 4
		}
		return frame[off:]
	}
	cases := []struct {
		name string
		file []byte
	}{
		{"pcap big-endian microseconds", pcapFile(binary.BigEndian, false, LinkEthernet, recs, nil)},
		{"pcap little-endian nanoseconds", pcapFile(binary.LittleEndian, true, LinkEthernet, recs, nil)},
		{"pcap big-endian nanoseconds", pcapFile(binary.BigEndian, true, LinkEthernet, recs, nil)},
		{"pcapng little-endian", pcapngFile(binary.LittleEndian, LinkEthernet, 6, recs, nil)},
		{"pcapng big-endian nanosecond tsresol", pcapngFile(binary.BigEndian, LinkEthernet, 9, recs, nil)},
		{"raw IP", pcapFile(binary.LittleEndian, false, LinkRaw, recs, ipOf)},
		{"IPv4 link type", pcapFile(binary.LittleEndian, false, LinkIPv4, recs, ipOf)},
		{"802.1Q and QinQ", pcapFile(binary.LittleEndian, false, LinkEthernet, recs, func(f []byte) []byte { return ether(ipOf(f), 0x0064, 0x0010) })},
		{"Linux cooked v1", pcapFile(binary.LittleEndian, false, LinkSLL, recs, func(f []byte) []byte {
			h := make([]byte, 16)
			binary.BigEndian.PutUint16(h[14:], 0x0800)
			return append(h, ipOf(f)...)
		})},
		{"Linux cooked v2", pcapngFile(binary.LittleEndian, LinkSLL2, 6, recs, func(f []byte) []byte {
			h := make([]byte, 20)
			binary.BigEndian.PutUint16(h, 0x0800)
			return append(h, ipOf(f)...)
		})},
		{"BSD loopback", pcapFile(binary.LittleEndian, false, LinkNull, recs, func(f []byte) []byte {
			return append([]byte{2, 0, 0, 0}, ipOf(f)...)
		})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "c")
			os.WriteFile(f, tc.file, 0o644)
			got := analyzeJSON(t, f, "--scan-hosts", "5", "--scan-idle", "2h")
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			if !bytes.Equal(gj, wj) {
				t.Errorf("report differs:\n got %s\nwant %s", gj, wj)
			}
		})
	}
}

type testRec struct {
	ts   int64
	data []byte
}

func readAll(t testing.TB, name string) []testRec {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []testRec
	var rec Record
	for rd.Next(&rec) == nil {
		out = append(out, testRec{rec.Timestamp, slices.Clone(rec.Data)})
	}
	return out
}

func pcapFile(bo binary.AppendByteOrder, nanos bool, link uint32, recs []testRec, conv func([]byte) []byte) []byte {
	var b []byte
	magic := uint32(0xa1b2c3d4)
	if nanos {
		magic = 0xa1b23c4d
	}
	b = bo.AppendUint32(b, magic)
	b = bo.AppendUint16(b, 2)
	b = bo.AppendUint16(b, 4)
	b = bo.AppendUint32(b, 0)
	b = bo.AppendUint32(b, 0)
	b = bo.AppendUint32(b, 65535)
	b = bo.AppendUint32(b, link)
	for _, r := range recs {
		d := r.data
		if conv != nil {
			d = conv(d)
		}
		frac := r.ts % 1e9
		if !nanos {
			frac /= 1000
		}
		b = bo.AppendUint32(b, uint32(r.ts/1e9))
		b = bo.AppendUint32(b, uint32(frac))
		b = bo.AppendUint32(b, uint32(len(d)))
		b = bo.AppendUint32(b, uint32(len(d)))
		b = append(b, d...)
	}
	return b
}

// pcapngFile writes a section header, an interface with if_tsresol = 10^-tsresol, and
// one enhanced packet block per record.
func pcapngFile(bo binary.AppendByteOrder, link uint32, tsresol uint8, recs []testRec, conv func([]byte) []byte) []byte {
	block := func(b []byte, typ uint32, body []byte) []byte {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		b = bo.AppendUint32(b, typ)
		b = bo.AppendUint32(b, uint32(12+len(body)))
		b = append(b, body...)
		return bo.AppendUint32(b, uint32(12+len(body)))
	}
	var shb []byte
	shb = bo.AppendUint32(shb, 0x1a2b3c4d)
	shb = bo.AppendUint16(shb, 1)
	shb = bo.AppendUint16(shb, 0)
	shb = bo.AppendUint64(shb, ^uint64(0))
	b := block(nil, 0x0a0d0d0a, shb)
	var idb []byte
	idb = bo.AppendUint16(idb, uint16(link))
	idb = bo.AppendUint16(idb, 0)
	idb = bo.AppendUint32(idb, 0)
	idb = bo.AppendUint16(idb, 9)
	idb = bo.AppendUint16(idb, 1)
	idb = append(idb, tsresol, 0, 0, 0)
	idb = bo.AppendUint32(idb, 0) // opt_endofopt
	b = block(b, 1, idb)
	div := int64(1)
	for range 9 - int(tsresol) {
		div *= 10
	}
	for _, r := range recs {
		d := r.data
		if conv != nil {
			d = conv(d)
		}
		ticks := uint64(r.ts / div)
		var epb []byte
		epb = bo.AppendUint32(epb, 0)
		epb = bo.AppendUint32(epb, uint32(ticks>>32))
		epb = bo.AppendUint32(epb, uint32(ticks))
		epb = bo.AppendUint32(epb, uint32(len(d)))
		epb = bo.AppendUint32(epb, uint32(len(d)))
		epb = append(epb, d...)
		b = block(b, 6, epb)
	}
	return b
}
