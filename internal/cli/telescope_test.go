package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gantry/internal/telescope"
	"gantry/internal/telescope/geoip/geoiptest"
)

// td holds the telescope package's real captures and golden reports.
const td = "../telescope/testdata/"

func runAnalyze(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runAnalyzeStdin(t, strings.NewReader(""), args...)
}

func runAnalyzeStdin(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main(append([]string{"telescope", "analyze"}, args...), stdin, &o, &e)
	return o.String(), e.String(), code
}

// The command line gives the same reports as the options the telescope package's
// golden test uses: every flag reaches its option.
func TestAnalyzeGoldenThroughFlags(t *testing.T) {
	for _, format := range []string{"table", "json", "csv"} {
		t.Run(format, func(t *testing.T) {
			// Flags before, between and after the files.
			out, errOut, code := runAnalyze(t, "--scan-hosts", "5", td+"445_scan.pcap", "--scan-ports", "5",
				td+"backscatter.trace", td+"port_scan.pcap", "--scan-idle", "30m", "--dos-ppm", "5", "--format", format)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			want, err := os.ReadFile(td + "golden/multi." + format)
			if err != nil {
				t.Fatal(err)
			}
			if out != string(want) {
				t.Errorf("output differs from %smulti.%s:\n%s", td+"golden/", format, out)
			}
		})
	}
}

func TestAnalyzeArgs(t *testing.T) {
	scan, err := os.ReadFile(td + "port_scan.pcap")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		args       []string
		code       int
		stdout     string // substring; "" means stdout must be empty
		stderr     string // substring; "" means stderr must be empty
		stdinBytes []byte
	}{
		{"-h prints the usage on stdout", []string{"-h"}, 0, "usage: gantry telescope analyze FILE...", "", nil},
		{"--help too", []string{td + "port_scan.pcap", "--help"}, 0, "without backscatter (default 5m)", "", nil},
		{"unknown flag", []string{"--bogus", td + "port_scan.pcap"}, 1, "", "flag provided but not defined: -bogus", nil},
		{"negative count", []string{td + "port_scan.pcap", "--size", "-1"}, 1, "", "--size -1: must not be negative", nil},
		{"negative max-sources", []string{"--max-sources=-5", td + "port_scan.pcap"}, 1, "", "--max-sources -5: must not be negative", nil},
		{"bad duration", []string{"--scan-idle", "soon", td + "port_scan.pcap"}, 1, "", `invalid value "soon" for flag -scan-idle`, nil},
		{"-- ends the flags", []string{"--format", "json", "--", td + "port_scan.pcap"}, 0, `"packets": 10`, "", nil},
		{"after -- a dash name is a file", []string{"--", "--format"}, 1, "", "--format", nil},
		{"- reads stdin", []string{"-", "--format", "csv"}, 0, "class,,scan,,,,10,", "", scan},
		{"dark repeated and comma-separated", []string{td + "port_scan.pcap", "--format", "json", "--dark", "10.0.0.0/8,", "--dark", "192.168.0.0/16"}, 0, `"telescope_size": 16842752`, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runAnalyzeStdin(t, bytes.NewReader(tc.stdinBytes), tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			for _, c := range []struct{ name, got, want string }{{"stdout", out, tc.stdout}, {"stderr", errOut, tc.stderr}} {
				if c.want == "" && c.got != "" || !strings.Contains(c.got, c.want) {
					t.Errorf("%s = %q, want it to contain %q", c.name, c.got, c.want)
				}
			}
		})
	}
}

func TestTelescopeWithoutAnalyze(t *testing.T) {
	var o, e bytes.Buffer
	if code := Main([]string{"telescope", "watch"}, nil, &o, &e); code != 1 || o.Len() != 0 ||
		!strings.Contains(e.String(), "usage: gantry telescope analyze FILE...") {
		t.Errorf("exit %d stdout %q stderr %q", code, o.String(), e.String())
	}
}

func TestAnalyzeBadInput(t *testing.T) {
	dir := t.TempDir()
	notCapture := filepath.Join(dir, "notes.txt")
	os.WriteFile(notCapture, []byte("hello, this is not a capture\n"), 0o644)
	empty := filepath.Join(dir, "empty.pcap")
	os.WriteFile(empty, nil, 0o644)
	orig, _ := os.ReadFile(td + "port_scan.pcap")
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
		if _, errOut, code := runAnalyze(t, td+"port_scan.pcap", "--format", "xml"); code != 1 || !strings.Contains(errOut, "xml") {
			t.Errorf("exit %d stderr %q", code, errOut)
		}
	})
	t.Run("bad dark prefix", func(t *testing.T) {
		if _, errOut, code := runAnalyze(t, td+"port_scan.pcap", "--dark", "10.0.0.0/33"); code != 1 || !strings.Contains(errOut, "10.0.0.0/33") {
			t.Errorf("exit %d stderr %q", code, errOut)
		}
	})
	t.Run("truncated capture reports what was read and warns with the offset", func(t *testing.T) {
		out, errOut, code := runAnalyze(t, truncated, "--format", "json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var r telescope.Report
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
		out, errOut, code := runAnalyze(t, truncated, td+"port_scan.pcap", "--format", "json")
		var r telescope.Report
		if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil {
			t.Fatalf("exit %d, %v: %s", code, err, errOut)
		}
		if r.Packets != 15 {
			t.Errorf("packets = %d, want 15", r.Packets)
		}
	})
	t.Run("a bad file among good ones fails without a report", func(t *testing.T) {
		out, errOut, code := runAnalyze(t, td+"port_scan.pcap", notCapture)
		if code != 1 || out != "" || !strings.Contains(errOut, notCapture) {
			t.Errorf("exit %d stdout %q stderr %q", code, out, errOut)
		}
	})
}

// TestAnalyzeGeoIP: --geoip locates the real captures' scanner and victim, in every
// format; a file that is not a MaxMind DB is one line and exit 1.
func TestAnalyzeGeoIP(t *testing.T) {
	dir := t.TempDir()
	country, asn := geoiptest.Write(t, dir, []geoiptest.Network{
		{CIDR: "176.192.0.0/16", Country: "RU", ASN: 64510, ASOrg: "Scanner Net"},
		{CIDR: "202.229.120.0/24", Country: "JP", ASN: 64511, ASOrg: "Victim Hosting"},
	})
	files := []string{td + "445_scan.pcap", td + "backscatter.trace", "--scan-hosts", "5", "--scan-idle", "30m", "--dos-ppm", "5", "--geoip", country + "," + asn}
	out, errOut, code := runAnalyze(t, append(files, "--format", "json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r telescope.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Scans) != 1 || r.Scans[0].Location != (telescope.Location{Country: "RU", ASN: 64510, ASOrg: "Scanner Net"}) {
		t.Errorf("scans %+v", r.Scans)
	}
	if len(r.Attacks) == 0 {
		t.Fatal("no attack")
	}
	for _, a := range r.Attacks {
		if a.Location != (telescope.Location{Country: "JP", ASN: 64511, ASOrg: "Victim Hosting"}) || len(a.Services) == 0 || a.Duration <= 0 {
			t.Errorf("attack %+v", a)
		}
	}
	out, _, _ = runAnalyze(t, append(files, "--format", "table")...)
	if !strings.Contains(out, "JP       AS64511 Victim Hosting") || !strings.Contains(out, "RU       AS64510 Scanner Net") {
		t.Errorf("table:\n%s", out)
	}
	out, _, _ = runAnalyze(t, append(files, "--format", "csv")...)
	if !strings.Contains(out, ",RU,64510,Scanner Net,false\n") {
		t.Errorf("csv:\n%s", out)
	}

	_, errOut, code = runAnalyze(t, td+"445_scan.pcap", "--geoip", td+"445_scan.pcap")
	if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "--geoip: geoip "+td+"445_scan.pcap") {
		t.Errorf("exit %d stderr %q", code, errOut)
	}
}
