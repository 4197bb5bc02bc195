package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"gantry/internal/config"
	"gantry/internal/telescope"
	"gantry/internal/telescope/export"
	"gantry/internal/telescope/geoip"
)

const analyzeUsage = "usage: gantry telescope analyze FILE... [--format table|json|csv] [--dark CIDR,...] [--size N]\n" +
	"       [--geoip FILE.mmdb,...]\n" +
	"       [--scan-hosts N] [--scan-ports N] [--scan-idle D] [--dos-packets N] [--dos-duration D] [--dos-ppm N]\n" +
	"       [--dos-idle D] [--max-sources N] [--export URL [--node NAME]]   (FILE - reads standard input)"

func telescopeCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help") {
		fmt.Fprint(stdout, telescopeUsage)
		return 0
	}
	if len(args) == 0 || args[0] != "analyze" {
		fmt.Fprint(stderr, "gantry telescope: ", telescopeUsage)
		return 1
	}
	return analyze(args[1:], stdin, stdout, stderr)
}

// analyze implements `gantry telescope analyze`; args are what follows "analyze",
// with flags before or after the files, and "--" ending the flags. It returns the
// exit status.
func analyze(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	const prefix = "gantry: telescope analyze: "
	fs := flag.NewFlagSet("telescope analyze", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		opts   telescope.Options
		format = fs.String("format", "table", "output format: table, json or csv")
		dark   darkFlag
		exp    = fs.String("export", "", "also send the scans and attacks to ClickHouse, e.g. http://user:password@host:8123/?database=telescope")
		node   = fs.String("node", "", "the node name of exported rows (default: the host name)")
	)
	fs.Var(&dark, "dark", "comma-separated CIDRs monitored as dark space")
	fs.IntVar(&opts.Size, "size", 0, "telescope size n (addresses) when --dark is not given")
	var geo []string
	fs.Func("geoip", "comma-separated MaxMind DB files (country, ASN) locating scanners and victims", func(s string) error {
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				geo = append(geo, f)
			}
		}
		return nil
	})
	fs.IntVar(&opts.ScanHosts, "scan-hosts", 25, "distinct targets for a horizontal, strobe or block scan")
	fs.IntVar(&opts.ScanPorts, "scan-ports", 15, "distinct ports for a vertical or block scan")
	fs.DurationVar(&opts.ScanIdle, "scan-idle", 10*time.Minute, "a scan ends after this long without a probe")
	fs.IntVar(&opts.DoSPackets, "dos-packets", 25, "packets a victim needs to be under attack")
	fs.DurationVar(&opts.DoSDuration, "dos-duration", 60*time.Second, "duration an attack needs")
	fs.IntVar(&opts.DoSPPM, "dos-ppm", 30, "highest packets per minute (60 s window sliding by 10 s) an attack needs")
	fs.DurationVar(&opts.DoSIdle, "dos-idle", 300*time.Second, "an attack ends after this long without backscatter")
	fs.IntVar(&opts.MaxSources, "max-sources", 1<<17, "sources and victims tracked at once before eviction")

	var files []string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, help(fs).text)
				return 0
			}
			fmt.Fprintf(stderr, "%s%v\n%s\n", prefix, err, analyzeUsage)
			return 1
		}
		consumed := len(rest) - len(fs.Args())
		rest = fs.Args()
		if consumed > 0 && args[len(args)-len(rest)-1] == "--" {
			files = append(files, rest...)
			break
		}
		if len(rest) > 0 {
			files = append(files, rest[0])
			rest = rest[1:]
		}
	}
	if len(files) == 0 {
		fmt.Fprintf(stderr, "%sno capture file given\n%s\n", prefix, analyzeUsage)
		return 1
	}
	switch *format {
	case "table", "json", "csv":
	default:
		fmt.Fprintf(stderr, "%s--format %q: want table, json or csv\n", prefix, *format)
		return 1
	}
	for name, v := range map[string]int{"size": opts.Size, "scan-hosts": opts.ScanHosts, "scan-ports": opts.ScanPorts,
		"dos-packets": opts.DoSPackets, "dos-ppm": opts.DoSPPM, "max-sources": opts.MaxSources} {
		if v < 0 {
			fmt.Fprintf(stderr, "%s--%s %d: must not be negative\n", prefix, name, v)
			return 1
		}
	}
	opts.Dark = dark
	var db *geoip.DB
	if len(geo) > 0 {
		var err error
		if db, err = geoip.Open(geo); err != nil {
			fmt.Fprintf(stderr, "%s--geoip: %v\n", prefix, err)
			return 1
		}
		defer db.Close()
	}
	var target *export.Target
	if *exp != "" {
		t, err := export.ParseTarget(*exp, "", "")
		if err != nil {
			fmt.Fprintf(stderr, "%s--export: %v\n", prefix, err)
			return 1
		}
		target = t
	}

	c := telescope.NewClassifier(opts)
	for _, name := range files {
		if err := telescope.AnalyzeFileProgress(c, name, stdin, stderr, progressFor(stderr, name)); err != nil {
			fmt.Fprintf(stderr, "%s%v\n", prefix, err)
			return 1
		}
	}
	r := c.Report()
	if db != nil {
		r.Locate(db.Lookup)
	}
	var err error
	switch *format {
	case "json":
		err = r.WriteJSON(stdout)
	case "csv":
		err = r.WriteCSV(stdout)
	default:
		err = r.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%swrite report: %v\n", prefix, err)
		return 1
	}
	if target != nil {
		name := *node
		if name == "" {
			name = (config.Telescope{}).Node()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		n, err := export.Report(ctx, target, name, &r)
		if err != nil {
			fmt.Fprintf(stderr, "%s--export: %v (%d rows sent before it)\n", prefix, err, n)
			return 1
		}
		fmt.Fprintf(stderr, "gantry: telescope analyze: exported %d scans and attacks to %s as node %q\n", n, target, name)
	}
	return 0
}

// darkFlag accepts comma-separated CIDRs, and the flag repeated.
type darkFlag []netip.Prefix

func (d *darkFlag) String() string {
	var s []string
	for _, p := range *d {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

func (d *darkFlag) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := telescope.ParsePrefix(f)
		if err != nil {
			return err
		}
		*d = append(*d, p)
	}
	return nil
}
