package cli

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gantry/internal/adminsock"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/cli -run %s -update to write it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (run with -update if the change is meant):\n--- got\n%s--- want\n%s", t.Name(), file, got, want)
	}
}

// TestHelp: every command's --help and -h print its usage and flags to stdout
// and exit 0, whatever else is on the line.
func TestHelp(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		golden string
	}{
		{"gantry --help", []string{"--help"}, "gantry.txt"},
		{"gantry help", []string{"help"}, "gantry.txt"},
		{"serve --help", []string{"serve", "--help"}, "serve.txt"},
		{"serve -h after other flags", []string{"serve", "--listen", ":9", "somedir", "-h"}, "serve.txt"},
		{"check --help", []string{"check", "--help"}, "check.txt"},
		{"check -h", []string{"check", "-h"}, "check.txt"},
		{"reload --help", []string{"reload", "--help"}, "reload.txt"},
		{"hash-password --help", []string{"hash-password", "--help"}, "hash-password.txt"},
		{"version --help", []string{"version", "--help"}, "version.txt"},
		{"telescope --help", []string{"telescope", "--help"}, "telescope.txt"},
		{"telescope -h", []string{"telescope", "-h"}, "telescope.txt"},
		{"telescope analyze --help", []string{"telescope", "analyze", "--help"}, "telescope-analyze.txt"},
		{"telescope analyze -h after a file and a changed threshold", []string{"telescope", "analyze", "x.pcap", "--scan-idle", "1m", "-h"}, "telescope-analyze.txt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := run(t, "", tc.args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr)
			}
			if !strings.HasPrefix(out, "usage:") && !strings.HasPrefix(out, "gantry serves") {
				t.Errorf("stdout %q does not start with the usage", out)
			}
			// The socket's default depends on who runs the test, and where.
			golden(t, filepath.Join("help", tc.golden), strings.ReplaceAll(out, adminsock.Path(), "<admin socket>"))
		})
	}
}

// TestAnalyzeHelpShowsDefaults: the thresholds a person tunes are shown with the
// values they have when not given, in the units they would type.
func TestAnalyzeHelpShowsDefaults(t *testing.T) {
	out, _, _ := run(t, "", "telescope", "analyze", "--help")
	for _, want := range []string{"--scan-hosts int", "(default 25)", "--scan-idle duration", "(default 10m)", "--dos-idle duration", "(default 5m)",
		"--dos-duration duration", "(default 1m)", "--dos-ppm int", "(default 30)", "--format string", "(default table)"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}

func TestUsageErrorsStayOnStderr(t *testing.T) {
	for _, args := range [][]string{{}, {"telescope"}, {"telescope", "analyse"}, {"serve", "--bogus"}} {
		out, stderr, code := run(t, "", args...)
		if code == 0 || out != "" || stderr == "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want a failure on stderr", args, code, out, stderr)
		}
	}
}
