package config_test

import (
	"os"
	"strings"
	"testing"

	"gantry/internal/config"
)

// TestExportConfig: the ClickHouse export's keys are checked at their lines, and
// no message shows a password.
func TestExportConfig(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string // each must appear in the error text; none: valid
	}{
		{"valid", "[telescope]\nexport = \"http://ch:8123/?database=telescope\"\nnode_name = \"edge-1\"\nexport_user = \"writer\"\nexport_password = \"pw-secret\"\n", nil},
		{"credentials in the URL", "[telescope]\nexport = \"https://writer:pw-secret@ch:8443/?database=telescope\"\n", nil},
		{"bad scheme", "[telescope]\n\nexport = \"clickhouse://writer:pw-secret@ch:9000/\"\n", []string{"cfg.toml:3: [telescope] export: scheme \"clickhouse\": want http or https"}},
		{"bad port", "[telescope]\nexport = \"http://writer:pw-secret@ch:x/\"\n", []string{"cfg.toml:2: [telescope] export: not a URL", "invalid port"}},
		{"bad database", "[telescope]\nexport = \"http://ch:8123/?database=a-b&password=pw-secret\"\n", []string{"cfg.toml:2: [telescope] export: database \"a-b\""}},
		{"user without export", "[telescope]\nexport_user = \"writer\"\nexport_password = \"pw-secret\"\n", []string{"cfg.toml:2: [telescope] export_user is set but export is not", "cfg.toml:3: [telescope] export_password is set but export is not"}},
		{"node name with a newline", "[telescope]\nnode_name = \"a\\nb\"\n", []string{"cfg.toml:2: [telescope] node_name \"a\\nb\""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse("cfg.toml", tc.toml)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if c.Telescope.Export == "" {
					t.Error("export not read")
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\nlacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "pw-secret") {
				t.Errorf("the error shows the password:\n%s", err)
			}
		})
	}
}

func TestNodeNameDefault(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Fatalf("this machine has no host name (%v): the default node_name has nothing to use", err)
	}
	for _, tc := range []struct{ name, toml, want string }{
		{"host name", "[telescope]\n", host},
		{"set", "[telescope]\nnode_name = \"edge-1\"\n", "edge-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse("cfg.toml", tc.toml)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Telescope.Node(); got != tc.want {
				t.Errorf("Node() = %q, want %q", got, tc.want)
			}
		})
	}
}
