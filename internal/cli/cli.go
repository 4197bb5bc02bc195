// Package cli implements gantry's command line: it turns flags into a config and
// hands it to the server, telescope and dashboard packages. Every error a person can
// fix is one line naming the thing and the fix, with exit status 1.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"gantry/internal/wsgi"
)

// version is gantry's version from the build info the Go toolchain embeds: the
// module version (a tag, or a pseudo-version of the commit with "+dirty" for
// uncommitted changes), else "devel". The Debian package's version is made from
// the same string (scripts/package.sh), so there is one source.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return buildVersion(bi)
}

func buildVersion(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	if rev := buildSetting(bi, "vcs.revision"); len(rev) >= 12 {
		v := "devel-" + rev[:12]
		if buildSetting(bi, "vcs.modified") == "true" {
			v += "+dirty"
		}
		return v
	}
	return "devel"
}

// versionText is what `gantry version` prints: the version, the commit it was
// built from, the toolchain and the build tags.
func versionText(bi *debug.BuildInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "gantry %s\n", buildVersion(bi))
	if rev := buildSetting(bi, "vcs.revision"); rev != "" {
		fmt.Fprintf(&b, "commit %s", rev)
		if t := buildSetting(bi, "vcs.time"); t != "" {
			fmt.Fprintf(&b, " (%s)", t)
		}
		if buildSetting(bi, "vcs.modified") == "true" {
			b.WriteString(" with uncommitted changes")
		}
		b.WriteString("\n")
	}
	tags := buildSetting(bi, "-tags")
	if tags == "" {
		tags = "none"
	}
	fmt.Fprintf(&b, "%s %s/%s, build tags: %s\n", bi.GoVersion, buildSetting(bi, "GOOS"), buildSetting(bi, "GOARCH"), tags)
	return b.String()
}

func buildSetting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

func printVersion(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	short := fs.Bool("short", false, "print the version alone (scripts/package.sh reads it)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{GoVersion: runtime.Version(), Settings: []debug.BuildSetting{{Key: "GOOS", Value: runtime.GOOS}, {Key: "GOARCH", Value: runtime.GOARCH}}}
	}
	if *short {
		fmt.Fprintln(stdout, buildVersion(bi))
		return nil
	}
	fmt.Fprint(stdout, versionText(bi))
	fmt.Fprint(stdout, pythonText(wsgi.PythonLinked()))
	return nil
}

// pythonText is the line of `gantry version` that says whether embedded WSGI can
// run: the libpython version linked, if any.
func pythonText(linked string) string {
	if linked == "" {
		return "python: not linked (wsgi mode = \"embedded\" needs a gantry built with -tags python)\n"
	}
	return "python: libpython " + linked + " linked (wsgi mode = \"embedded\")\n"
}

const usage = `gantry serves your web apps from one machine, and watches the scans and probes it gets.

usage:
  gantry serve [DIR] [-c FILE] [--listen ADDR] [--admin ADDR|off] [--access-log stdout|off|FILE]
               [--tls-listen ADDR] [--tls-storage DIR]
               [--wsgi MODULE:CALLABLE] [--python PATH] [--php ADDR|auto] [--cgi PREFIX=DIR]
  gantry check -c FILE            validate a config; print each error with file:line
  gantry reload [--admin ADDR] [--socket PATH]  ask a running gantry to reload its config
  gantry telescope analyze FILE... [--format table|json|csv] [--dark CIDR,...] [--size N]
                                   FILE may be gzipped; - reads standard input
  gantry hash-password [--htpasswd USER]  read a password on stdin, print the hash for [admin] password_hash,
                                   or with --htpasswd a line for an auth file
  gantry version [-short]          version, commit, Go version and build tags

gantry COMMAND --help shows a command's flags and their defaults.
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
		return telescopeCmd(args[1:], stdin, stdout, stderr)
	case "hash-password":
		err = hashPassword(args[1:], stdin, stdout)
	case "version", "--version", "-version":
		err = printVersion(args[1:], stdout)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
	default:
		err = fmt.Errorf("unknown command %q: see `gantry help`", args[0])
	}
	if err != nil {
		var h *helpError
		if errors.As(err, &h) {
			fmt.Fprint(stdout, h.text)
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
				return nil, help(fs)
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
