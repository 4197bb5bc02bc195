package telescope

import (
	"os"
	"testing"
)

// TestMain lets the compiled test binary stand in for `gantry telescope analyze`
// (GANTRY_TELESCOPE_ANALYZE=1 ./telescope.test FILE...), so that bench/telescope.sh
// can time the analyzer before, and independently of, cmd/gantry.
func TestMain(m *testing.M) {
	if os.Getenv("GANTRY_TELESCOPE_ANALYZE") == "1" {
		os.Exit(AnalyzeCommand(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
