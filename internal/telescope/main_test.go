package telescope

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// TestMain lets the compiled test binary stand in for two small programs that
// bench/telescope.sh needs, before and independently of cmd/gantry:
//
//	GANTRY_TELESCOPE_ANALYZE=1 ./telescope.test FILE...   is `gantry telescope analyze FILE...`
//	GANTRY_TELESCOPE_REPEAT=N ./telescope.test IN OUT     writes IN repeated to N packets
func TestMain(m *testing.M) {
	if os.Getenv("GANTRY_TELESCOPE_ANALYZE") == "1" {
		os.Exit(AnalyzeCommand(os.Args[1:], os.Stdout, os.Stderr))
	}
	if v := os.Getenv("GANTRY_TELESCOPE_REPEAT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: GANTRY_TELESCOPE_REPEAT=N telescope.test IN OUT")
			os.Exit(2)
		}
		if err := RepeatCapture(os.Args[1], os.Args[2], n); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
