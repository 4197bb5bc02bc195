// Package cli implements gantry's command line: it turns flags into a config and
// hands it to the server, telescope and dashboard packages. Every error a person can
// fix is one line naming the thing and the fix, with exit status 1.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// Version is set at build time with -ldflags "-X gantry/internal/cli.Version=...".
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
	}
	return "devel"
}

const usage = `gantry serves your web apps from one machine, and watches the scans and probes it gets.

usage:
  gantry serve [DIR] [-c FILE] [--listen ADDR] [--admin ADDR|off] [--access-log stdout|off|FILE]
               [--wsgi MODULE:CALLABLE] [--python PATH] [--php ADDR|auto] [--cgi PREFIX=DIR]
  gantry check -c FILE            validate a config; print each error with file:line
  gantry reload [--admin ADDR] [--socket PATH]  ask a running gantry to reload its config
  gantry telescope analyze FILE... [--format table|json|csv] [--dark CIDR,...] [--size N]
  gantry hash-password            read a password on stdin, print the hash for [admin] password_hash
  gantry version
`

// Main runs the command line args (without the program name) and returns the exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stdout, stderr)
	case "check":
		err = check(args[1:], stdout)
	case "reload":
		err = reload(args[1:], stdout)
	case "telescope":
		return telescopeCmd(args[1:], stdout, stderr)
	case "hash-password":
		err = hashPassword(stdin, stdout)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "gantry %s\n", version())
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
	default:
		err = fmt.Errorf("unknown command %q: see `gantry help`", args[0])
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "gantry") {
			msg = "gantry: " + msg
		}
		fmt.Fprintln(stderr, msg)
		return 1
	}
	return 0
}

// parseInterspersed parses flags that may come before or after positional arguments
// ("gantry serve DIR --listen :80" as well as "gantry serve --listen :80 DIR").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("gantry %s: %v (see `gantry help`)", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
