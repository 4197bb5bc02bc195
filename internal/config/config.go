// Package config reads gantry's TOML configuration: strict decoding (an unknown or
// misplaced key is an error naming file:line), then defaults, then one fast validation
// pass that reports every problem at once.
package config

import (
	"os"
	"strings"
	"time"
)

// Config is a whole gantry configuration.
type Config struct {
	// File is the path the config was read from ("" when built from flags).
	File string `toml:"-"`
	// Text is the file's content, shown on the dashboard's config tab.
	Text string `toml:"-"`

	Server    Server    `toml:"server"`
	Admin     Admin     `toml:"admin"`
	TLS       TLS       `toml:"tls"`
	Telescope Telescope `toml:"telescope"`
	Sites     []Site    `toml:"site"`
}

// Server holds the listeners and limits shared by every site.
type Server struct {
	// Listen lists the addresses to accept HTTP on. Default ["127.0.0.1:8080"].
	Listen []string `toml:"listen"`
	// User: when started as root, bind the listeners, then run as this user; spawned
	// children (CGI scripts, workers) run as it too. Default: keep running as root.
	User string `toml:"user"`
	// AccessLog is "stdout" (default), "off", or a file path (reopened on SIGUSR1).
	AccessLog string `toml:"access_log"`
	// LogFormat is "combined" (Apache/nginx Combined Log Format, default) or "json".
	LogFormat string `toml:"log_format"`
	// ErrorLog is "stderr" (default) or a file path for gantry's own log lines.
	ErrorLog string `toml:"error_log"`
	// ReadHeaderTimeout bounds the time to read a request's headers (slowloris). Default 10s.
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included. Default 5m, so that
	// uploads on slow links still work; lower it if you accept no large uploads.
	ReadTimeout Duration `toml:"read_timeout"`
	// WriteTimeout drops a client that takes no response bytes for this long
	// (nginx's send_timeout): every write that makes progress starts it again, so
	// large downloads and long streams that keep flowing are never cut. Default
	// 60s; "0" means none.
	WriteTimeout Duration `toml:"write_timeout"`
	// writeTimeoutSet: the file gave write_timeout, so a 0 there means none.
	writeTimeoutSet bool
	// IdleTimeout closes keep-alive connections idle this long. Default 120s.
	IdleTimeout Duration `toml:"idle_timeout"`
	// ShutdownTimeout is how long in-flight requests may finish on SIGTERM. Default 30s.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// MaxBody is the largest request body accepted; larger ones get 413. Default 100MB.
	MaxBody Size `toml:"max_body"`
	// MaxHeader is the largest request header block; larger ones get 431. Default 64KB.
	MaxHeader Size `toml:"max_header"`
	// BodyTemp is the directory request bodies past 64KB are spooled to before a
	// gateway sees them, in files that have no name there (O_TMPFILE, or removed as
	// soon as created). Created 0700 when missing; it must not be writable by other
	// users. Default "": gantry-body-UID under the system's temporary directory, UID
	// the user gantry runs as once it has dropped privileges, so that two users'
	// gantry never share (or block) one directory.
	BodyTemp string `toml:"body_temp"`
	// BodyTempMax bounds the bytes of request bodies held in body_temp at once,
	// a quarter of it per client network (/24, /64); a body past it is answered
	// 503 with Retry-After. Default 1GB: slow clients cannot fill the disk.
	BodyTempMax Size `toml:"body_temp_max"`
	// FastPath serves plain GET/HEAD requests (no body) for cached static files and
	// for FastCGI and WSGI routes on gantry's own HTTP/1.1 loop (internal/http1)
	// instead of net/http's; the first other request on a connection hands that
	// connection to net/http. Responses are the same byte for byte. Default true. Turning it off by reload sends every connection's next
	// request to net/http; turning it on takes a restart.
	FastPath *bool `toml:"fast_path"`
	// TLSListen lists the addresses to accept HTTPS on (HTTP/1.1 and HTTP/2 by
	// ALPN), e.g. ["0.0.0.0:443"]. Default none: gantry serves no HTTPS and asks
	// no certificate authority for anything. See [tls] and each site's tls.
	TLSListen []string `toml:"tls_listen"`
	// HTTP3 serves HTTP/3 on the UDP ports of tls_listen. Default true when
	// tls_listen is set.
	HTTP3 *bool `toml:"http3"`
}

// Fast reports whether the fast path is on (the default).
func (s Server) Fast() bool { return s.FastPath == nil || *s.FastPath }

// Admin configures the dashboard, JSON API and /metrics listener.
type Admin struct {
	// Listen is the admin address, default "127.0.0.1:2020"; "off" disables it.
	Listen string `toml:"listen"`
	// PasswordHash (from `gantry hash-password`) is required when Listen is not loopback.
	PasswordHash string `toml:"password_hash"`
}

// Telescope configures the unsolicited-traffic sensors.
type Telescope struct {
	// Enabled turns the sensors on. Default true: the HTTP sensor costs little.
	Enabled *bool `toml:"enabled"`
	// Interface, e.g. "eth0", is captured live (AF_PACKET; needs CAP_NET_RAW).
	Interface string `toml:"interface"`
	// Dark lists CIDRs watched as dark space, e.g. ["203.0.113.0/24"].
	Dark []string `toml:"dark"`
	// DarkPorts lists ports to listen on, record and never answer: "23/tcp",
	// "631/udp", "127.0.0.1:2323/tcp".
	DarkPorts []string `toml:"dark_ports"`
	// GeoIP lists MaxMind DB files (GeoLite2-Country.mmdb, GeoLite2-ASN.mmdb, or
	// the City and commercial editions) that locate scanners and DoS victims.
	GeoIP []string `toml:"geoip"`
	// Scan and DoS thresholds for the packet sensor; 0 means the documented default
	// (Zeek's scan policy and Corsaro's DoS rules, see `gantry telescope analyze -h`).
	ScanHosts   int      `toml:"scan_hosts"`
	ScanPorts   int      `toml:"scan_ports"`
	ScanIdle    Duration `toml:"scan_idle"`
	DoSPackets  int      `toml:"dos_packets"`
	DoSDuration Duration `toml:"dos_duration"`
	DoSPPM      int      `toml:"dos_ppm"`
	// Ban turns findings into bans; see Ban.
	Ban Ban `toml:"ban"`
	// Export sends the sensors' findings (unsolicited requests, dark-port hits,
	// scans, attacks) to ClickHouse's HTTP interface, e.g.
	// "http://clickhouse:8123/?database=telescope": the database and its tables
	// are created when missing. Rows go in batches (1000 rows or every 5s) from
	// a bounded in-memory queue; serving never waits on ClickHouse, and rows
	// dropped while it is away are counted (dashboard, /metrics). Default ""
	// (off). Credentials may be in the URL, but export_user and export_password
	// keep them out of it; they are never logged.
	Export string `toml:"export"`
	// ExportUser and ExportPassword are the ClickHouse account of export (HTTP
	// Basic authentication); they override the URL's.
	ExportUser     string `toml:"export_user"`
	ExportPassword string `toml:"export_password"`
	// NodeName names this gantry in every exported row, so that one ClickHouse
	// serves a fleet. Default: the host name.
	NodeName string `toml:"node_name"`
}

// Node is NodeName, or the host name when it is not set.
func (t Telescope) Node() string {
	if t.NodeName != "" {
		return t.NodeName
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "gantry"
}

// On reports whether the telescope is enabled.
func (t Telescope) On() bool { return t.Enabled == nil || *t.Enabled }

// Site is a virtual host.
type Site struct {
	// Hosts are the names this site answers to: exact names or "*.example.com".
	// A site without hosts is the default site, used for any other Host.
	Hosts []string `toml:"hosts"`
	// Root is the document root for static, cgi and php routes, and for a site with no
	// routes (then everything is served as static files from it).
	Root string `toml:"root"`
	// Index lists the files tried, in order, for a directory request under the
	// site's root. Default ["index.html"], or ["index.html", "index.php"] when the
	// site has a "*.php" FastCGI route; a name a PHP route matches runs as PHP.
	Index []string `toml:"index"`
	// TryFiles, for requests the site's root serves, lists what is tried in order,
	// as nginx's try_files: "{path}" is the request's path as a file, "{path}/" as
	// a directory (then its index), and the last entry is the URI the request is
	// handed to, internally, when nothing matched — or "=404". The request keeps
	// its REQUEST_URI and query string. Default ["{path}", "{path}/", "/index.php"]
	// (a PHP front controller) when the site has a "*.php" FastCGI route, else none;
	// try_files = [] turns it off.
	TryFiles []string `toml:"try_files"`
	// Symlinks says which symbolic links under the root are followed, for static
	// files and PHP scripts alike: "inside" (default) only those that stay inside
	// the root; "owner" also those whose target has the link's owner (Apache's
	// SymLinksIfOwnerMatch); "follow" every link (nginx's and Apache's default).
	// With "owner" or "follow", whoever can create a link under the root can make
	// gantry serve any file the gantry user can read: only use them on trees that
	// only trusted users write, such as Debian's packaged web applications.
	Symlinks string `toml:"symlinks"`
	// TLS says where the site's certificate comes from when [server] tls_listen is
	// set: "acme" (Let's Encrypt or [tls] ca; the default for public names),
	// "internal" (gantry's own local CA; the default for localhost, IP addresses and
	// .local, .internal and .home.arpa names) or "off" (HTTP only).
	TLS string `toml:"tls"`
	// TLSCert and TLSKey name your own certificate chain and key (PEM) instead:
	// loaded at start and on SIGHUP, when a bad pair keeps the previous one serving.
	TLSCert string  `toml:"tls_cert"`
	TLSKey  string  `toml:"tls_key"`
	Routes  []Route `toml:"route"`
	// Middleware holds the site's options of each registered middleware, the
	// default of its routes' (see Route.Middleware).
	Middleware []Settings `toml:"-"`
}

// PHP reports whether the site has a route that runs "*.php" (or "/x/*.php")
// files as scripts: a FastCGI route.
func (s *Site) PHP() bool {
	for i := range s.Routes {
		r := &s.Routes[i]
		if sr, ok := r.Handler.(ScriptRunner); ok && sr.RunsScripts() && strings.HasSuffix(r.Path, "*.php") {
			return true
		}
	}
	return false
}

// ScriptRunner is a handler's options that run the files they are routed as
// scripts through an interpreter server (FastCGI), which a site's index and
// try_files defaults then hand PHP requests to.
type ScriptRunner interface{ RunsScripts() bool }

// Defaults used when a key is absent.
const (
	DefaultListen      = "127.0.0.1:8080"
	DefaultAdminListen = "127.0.0.1:2020"
	// DefaultTimeout bounds a gateway's or upstream's silence (timeout).
	DefaultTimeout = 60 * time.Second
	// DefaultWriteTimeout is nginx's send_timeout.
	DefaultWriteTimeout = 60 * time.Second
)
