package telescope

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// TestMain lets the compiled test binary build bench/telescope.sh's large capture,
// so that the generator stays out of the production package:
//
//	GANTRY_TELESCOPE_REPEAT=N ./telescope.test IN OUT     writes IN repeated to N packets (OUT.pcapng: as pcapng)
func TestMain(m *testing.M) {
	if v := os.Getenv("GANTRY_TELESCOPE_REPEAT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: GANTRY_TELESCOPE_REPEAT=N telescope.test IN OUT")
			os.Exit(2)
		}
		if err := repeatCapture(os.Args[1], os.Args[2], n); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
