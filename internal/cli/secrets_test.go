package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenSecret(t *testing.T) {
	cases := []struct {
		name string
		mode os.FileMode
		warn bool
	}{
		{"world-readable config", 0o644, true},
		{"group-readable config", 0o640, false},
		{"private config", 0o600, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "gantry.toml")
			if err := os.WriteFile(file, []byte("[admin]\npassword_hash = \"x\"\n"), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(file, tc.mode); err != nil {
				t.Fatal(err)
			}
			got := openSecret(file, "[admin] password_hash")
			if (got != "") != tc.warn {
				t.Fatalf("openSecret = %q, want a warning: %v", got, tc.warn)
			}
			if tc.warn && !strings.Contains(got, "chmod o-r "+file) {
				t.Errorf("warning %q does not name the fix", got)
			}
		})
	}
}
