package telescope

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// analyze classifies files with opts as `gantry telescope analyze` does: warnings
// go to the returned string, and the first bad file is the error.
func analyze(t *testing.T, opts Options, files ...string) (Report, string, error) {
	t.Helper()
	var warn bytes.Buffer
	c := NewClassifier(opts)
	for _, f := range files {
		if err := AnalyzeFile(c, f, strings.NewReader(""), &warn); err != nil {
			return Report{}, warn.String(), err
		}
	}
	return c.Report(), warn.String(), nil
}

// analyzeJSON is the report of files as the JSON format writes it and a reader
// decodes it, so that the tests see what a user's tools see.
func analyzeJSON(t *testing.T, opts Options, files ...string) Report {
	t.Helper()
	r, warn, err := analyze(t, opts, files...)
	if err != nil {
		t.Fatalf("analyze %v: %v (warnings %q)", files, err, warn)
	}
	var out bytes.Buffer
	if err := r.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatalf("analyze %v: bad JSON: %v\n%s", files, err, out.String())
	}
	return back
}

// The acceptance cases on the real captures from NCSA's scan detector.
func TestSharedCaptures(t *testing.T) {
	cases := []struct {
		name  string
		opts  Options
		files []string
		check func(t *testing.T, r Report)
	}{
		{"port_scan is a vertical scan", Options{ScanPorts: 5}, []string{"testdata/port_scan.pcap"}, func(t *testing.T, r Report) {
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
		{"port_scan at the default 15 ports is no scan", Options{}, []string{"testdata/port_scan.pcap"}, func(t *testing.T, r Report) {
			if len(r.Scans) != 0 {
				t.Errorf("scans = %+v", r.Scans)
			}
		}},
		{"445_scan slow horizontal scan at 30m idle", Options{ScanHosts: 5, ScanIdle: 30 * time.Minute}, []string{"testdata/445_scan.pcap"}, func(t *testing.T, r Report) {
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
		{"445_scan at the default idle is no scan", Options{ScanHosts: 5}, []string{"testdata/445_scan.pcap"}, func(t *testing.T, r Report) {
			if len(r.Scans) != 0 {
				t.Errorf("scans = %+v", r.Scans)
			}
			if r.Classes.Scan != 21 {
				t.Errorf("probes = %d, want 21", r.Classes.Scan)
			}
		}},
		{"backscatter.trace at the defaults", Options{}, []string{"testdata/backscatter.trace"}, func(t *testing.T, r Report) {
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
		{"backscatter.trace at --dos-ppm 5", Options{DoSPPM: 5}, []string{"testdata/backscatter.trace"}, func(t *testing.T, r Report) {
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
		{"backscatter.trace with --dark sets n", Options{DoSPPM: 5, Dark: []netip.Prefix{netip.MustParsePrefix("192.150.186.0/23")}}, []string{"testdata/backscatter.trace"}, func(t *testing.T, r Report) {
			if r.TelescopeSize != 512 {
				t.Errorf("telescope size = %g, want 512", r.TelescopeSize)
			}
			// Outbound packets from the telescope's own addresses are not to it.
			if r.OtherReasons["not-dark"] == 0 || len(r.Attacks) == 0 {
				t.Errorf("not-dark %d, attacks %d", r.OtherReasons["not-dark"], len(r.Attacks))
			}
		}},
		{"--size overrides n", Options{DoSPPM: 5, Size: 256}, []string{"testdata/backscatter.trace"}, func(t *testing.T, r Report) {
			if r.TelescopeSize != 256 || len(r.Attacks) == 0 {
				t.Fatalf("size %g, attacks %d", r.TelescopeSize, len(r.Attacks))
			}
			a := r.Attacks[0]
			if want := float64(a.Packets) / a.End.Sub(a.Start).Seconds() * (1 << 32) / 256; a.EstPPS < want*0.999 || a.EstPPS > want*1.001 {
				t.Errorf("est_pps = %g, want %g", a.EstPPS, want)
			}
		}},
		{"zero windows: same src and dst is spoofed", Options{ScanHosts: 9}, []string{"testdata/scan_with_zero_windows.pcap"}, func(t *testing.T, r Report) {
			if r.OtherReasons["spoofed:same-src-dst"] != 1 || len(r.Scans) != 1 || r.Scans[0].Targets != 9 || r.Scans[0].Kind != "horizontal" {
				t.Errorf("other %v scans %+v", r.OtherReasons, r.Scans)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, analyzeJSON(t, tc.opts, tc.files...)) })
	}
}

// A later capture given first must not expire the earlier capture's state at once:
// the attacks found do not depend on the order of the files.
func TestFileOrderDoesNotSplitAttacks(t *testing.T) {
	alone := analyzeJSON(t, Options{DoSPPM: 5}, "testdata/backscatter.trace")
	after := analyzeJSON(t, Options{DoSPPM: 5}, "testdata/port_scan.pcap", "testdata/backscatter.trace")
	if len(alone.Attacks) == 0 || len(after.Attacks) != len(alone.Attacks) {
		t.Fatalf("attacks alone %d, after a 2017 capture %d", len(alone.Attacks), len(after.Attacks))
	}
	for i := range alone.Attacks {
		if a, b := alone.Attacks[i], after.Attacks[i]; a.Packets != b.Packets || !a.Start.Equal(b.Start) || !a.End.Equal(b.End) {
			t.Errorf("attack %d: alone %+v, after %+v", i, a, b)
		}
	}
}

// The golden reports' input; internal/cli's test runs the same through the command
// line (--scan-hosts 5 --scan-ports 5 --scan-idle 30m --dos-ppm 5) against the same files.
var (
	goldenOptions = Options{ScanHosts: 5, ScanPorts: 5, ScanIdle: 30 * time.Minute, DoSPPM: 5}
	goldenFiles   = []string{"testdata/445_scan.pcap", "testdata/backscatter.trace", "testdata/port_scan.pcap"}
)

// Golden outputs in the three formats; -update rewrites them.
func TestGoldenOutputs(t *testing.T) {
	cases := []struct{ name, format string }{
		{"multi.table", "table"}, {"multi.json", "json"}, {"multi.csv", "csv"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, warn, err := analyze(t, goldenOptions, goldenFiles...)
			if err != nil || warn != "" {
				t.Fatalf("analyze: %v (warnings %q)", err, warn)
			}
			var b strings.Builder
			switch tc.format {
			case "table":
				err = r.WriteTable(&b)
			case "json":
				err = r.WriteJSON(&b)
			case "csv":
				err = r.WriteCSV(&b)
			}
			if err != nil {
				t.Fatal(err)
			}
			out := b.String()
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

// Every container and byte order must yield the same report as the original file.
func TestCaptureFormatsAgree(t *testing.T) {
	recs := readAll(t, "testdata/multiport_scan.pcap")
	want := analyzeJSON(t, Options{ScanHosts: 5, ScanIdle: 2 * time.Hour}, "testdata/multiport_scan.pcap")
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
			got := analyzeJSON(t, Options{ScanHosts: 5, ScanIdle: 2 * time.Hour}, f)
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
