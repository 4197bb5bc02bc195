package cli

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"

	"gantry/internal/config"
	"gantry/internal/fastcgi"
	"gantry/internal/wsgi"
)

// servedText is what `gantry serve DIR` prints once it serves: the directory,
// each route it found there and what answers it, in the order they are
// matched, and where to point a browser.
func servedText(cfg *config.Config, addrs, tlsAddrs []string) string {
	var b strings.Builder
	for _, s := range cfg.Sites {
		fmt.Fprintf(&b, "gantry serves %s\n", s.Root)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		rootServed := false
		for _, r := range s.Routes {
			rootServed = rootServed || r.Path == "/"
			fmt.Fprintf(tw, "  %s\t%s\n", r.Path, describeRoute(&r, s.Root))
		}
		if !rootServed {
			fmt.Fprintf(tw, "  /\tstatic files from %s\n", s.Root)
		}
		tw.Flush()
	}
	for _, a := range addrs {
		fmt.Fprintf(&b, "open http://%s/\n", openable(a))
	}
	for _, a := range tlsAddrs {
		fmt.Fprintf(&b, "open https://%s/\n", openable(a))
	}
	return b.String()
}

// openable is listener address a as a browser can open it: a listener on every
// interface ([::]:8080, 0.0.0.0:8080) answers on localhost.
func openable(a string) string {
	ap, err := netip.ParseAddrPort(a)
	if err != nil || !ap.Addr().IsUnspecified() {
		return a
	}
	return net.JoinHostPort("localhost", strconv.Itoa(int(ap.Port())))
}

// describeRoute says in words what answers route r.
func describeRoute(r *config.Route, root string) string {
	rel := func(p string) string {
		if rest, ok := strings.CutPrefix(p, root+"/"); ok {
			return rest + "/"
		}
		return p
	}
	switch h := r.Handler.(type) {
	case *wsgi.Options:
		what := "WSGI app"
		if app, django := wsgi.DetectDjango(h.Chdir); django && app == h.App {
			what = "Django project"
		}
		python := h.Python
		if python == "" {
			python = "python3"
		}
		return fmt.Sprintf("%s %s (%s, %d processes)", what, h.App, python, h.Processes)
	case *fastcgi.Options:
		if len(h.Command) > 0 {
			return fmt.Sprintf("PHP through %s, started by gantry", strings.Join(h.Command, " "))
		}
		return "PHP through FastCGI at " + h.Address
	}
	switch r.Kind() {
	case "static":
		return "static files from " + rel(r.Target())
	case "cgi":
		return "CGI scripts in " + rel(r.Target())
	}
	return r.Kind() + " " + r.Target()
}
