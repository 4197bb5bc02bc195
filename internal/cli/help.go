package cli

import (
	"flag"
	"strings"
	"time"
)

// synopses are the first lines of each command's --help; its flags follow.
var synopses = map[string]string{
	"serve": "usage: gantry serve [DIR] [-c FILE] [flags]\n\n" +
		"Serve DIR by convention (its files; cgi-bin/ as CGI; *.php with --php; a Django\n" +
		"project or --wsgi app), or the sites of a config file (-c FILE, else ./gantry.toml).",
	"check": "usage: gantry check -c FILE\n\n" +
		"Validate a config file; print every problem with file:line, and exit 1 if there is one.",
	"reload": "usage: gantry reload [--admin ADDR] [--socket PATH] [--json]\n\n" +
		"Ask a running gantry to re-read its config file; print what changed, or each\n" +
		"problem with file:line (the running config keeps serving then).",
	"hash-password": "usage: gantry hash-password [--htpasswd USER] < password\n\n" +
		"Read a password on stdin; print the hash for [admin] password_hash, or with\n" +
		"--htpasswd a line for a route's auth file.",
	"version": "usage: gantry version [-short]\n\n" +
		"Print the version, the commit it was built from, the Go version and the build tags.",
	"telescope analyze": "usage: gantry telescope analyze FILE... [flags]\n\n" +
		"Report the scans and DoS attacks (backscatter) in pcap or pcapng captures, gzipped\n" +
		"or not; FILE - reads standard input.",
}

const telescopeUsage = `usage: gantry telescope analyze FILE... [flags]

commands:
  analyze   report the scans and DoS attacks in capture files (see gantry telescope analyze --help)
`

// helpError is a --help or -h: the usage, for stdout, and exit status 0.
type helpError struct{ text string }

func (h *helpError) Error() string { return h.text }

// help is fs's --help text: the synopsis and every flag with its default.
func help(fs *flag.FlagSet) *helpError {
	var b strings.Builder
	b.WriteString(synopses[fs.Name()])
	b.WriteString("\n\nflags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  -" + f.Name
		if len(f.Name) > 1 {
			line = "  --" + f.Name
		}
		if name != "" {
			line += " " + name
		}
		const col = 24
		if len(line) < col-1 {
			line += strings.Repeat(" ", col-len(line))
		} else {
			line += "\n" + strings.Repeat(" ", col)
		}
		line += usage
		if d := flagDefault(f); d != "" {
			line += " (default " + d + ")"
		}
		b.WriteString(line + "\n")
	})
	return &helpError{text: b.String()}
}

// flagDefault is f's default as a person would type it ("10m", not "10m0s"), or
// "" when it has none worth showing.
func flagDefault(f *flag.Flag) string {
	switch v := f.Value.(type) {
	case interface{ IsBoolFlag() bool }:
		if f.DefValue == "true" {
			return "true"
		}
		return ""
	case flag.Getter:
		if _, ok := v.Get().(time.Duration); ok {
			d, err := time.ParseDuration(f.DefValue)
			if err != nil || d == 0 {
				return ""
			}
			return shortDuration(d)
		}
	}
	if f.DefValue == "" || f.DefValue == "0" {
		return ""
	}
	return f.DefValue
}

// shortDuration writes d without zero units: 10m, 1h30m, 90s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
