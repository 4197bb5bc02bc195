// Command gantry serves a person's web apps from one machine and watches the
// unsolicited traffic it gets. See `gantry help`.
package main

import (
	"os"

	"gantry/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
