package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Problem is one thing wrong with a config, at a line of its file when known.
type Problem struct {
	File string
	Line int
	Msg  string
}

func (p Problem) String() string {
	switch {
	case p.File != "" && p.Line > 0:
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	case p.File != "":
		return fmt.Sprintf("%s: %s", p.File, p.Msg)
	}
	return p.Msg
}

// Errors lists every problem found in a config.
type Errors []Problem

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, p := range e {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads, checks and completes the config at path. Its error, when not an I/O
// error, is an Errors listing every problem with its file:line.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, string(data))
}

// Parse is Load for a config already in memory; file names it in messages.
func Parse(file, text string) (*Config, error) {
	c := &Config{File: file, Text: text}
	md, err := toml.Decode(text, c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, Errors{{File: file, Line: pe.Position.Line, Msg: pe.Message}}
		}
		return nil, Errors{{File: file, Msg: err.Error()}}
	}
	v := &validator{file: file}
	routeLines := checkKeys(v, md, text, c)
	c.Server.writeTimeoutSet = md.IsDefined("server", "write_timeout")
	c.resolvePaths()
	c.setDefaults()
	c.validate(v, routeLines)
	if len(v.errs) > 0 {
		return nil, v.errs
	}
	return c, nil
}

// routeLoc is where a route and its keys are in the file.
type routeLoc struct {
	line int
	keys map[string]int
}

type validator struct {
	file    string
	errs    Errors
	keyLine map[string]int // first line of each dotted key
	sites   []routeLoc     // where each [[site]] and its own keys are
}

// addKey reports a problem at the line of a top-level (non-array) key.
func (v *validator) addKey(key string, format string, args ...any) {
	v.add(v.keyLine[key], format, args...)
}

func (v *validator) add(line int, format string, args ...any) {
	v.errs = append(v.errs, Problem{File: v.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// checkKeys reports unknown keys and keys that do not apply to their route's handler.
// It returns, per site and route, where each was defined so later checks can name lines.
func checkKeys(v *validator, md toml.MetaData, text string, c *Config) [][]routeLoc {
	undecoded := map[string]bool{}
	for _, k := range md.Undecoded() {
		undecoded[k.String()] = true
	}
	lines := locateKeys(text, md.Keys())
	v.keyLine = map[string]int{}
	for i, k := range md.Keys() {
		if _, ok := v.keyLine[k.String()]; !ok {
			v.keyLine[k.String()] = lines[i]
		}
	}
	locs := make([][]routeLoc, len(c.Sites))
	site, route := -1, -1
	for i, k := range md.Keys() {
		ks := k.String()
		typ := md.Type(k...)
		switch {
		case ks == "site" && typ == "ArrayHash":
			site, route = site+1, -1
			v.sites = append(v.sites, routeLoc{line: lines[i], keys: map[string]int{}})
		case ks == "site.route" && typ == "ArrayHash":
			route++
			if site >= 0 && site < len(locs) {
				locs[site] = append(locs[site], routeLoc{line: lines[i], keys: map[string]int{}})
			}
		}
		if undecoded[ks] {
			parent := strings.Join(k[:len(k)-1], ".")
			if isEnvKey(k) {
				continue
			}
			where := "at top level"
			if parent != "" {
				where = "in [" + parent + "]"
			}
			v.add(lines[i], "unknown key %q %s%s", k[len(k)-1], where, suggest(k))
			delete(undecoded, ks)
			continue
		}
		if len(k) == 2 && k[0] == "site" && site >= 0 && site < len(v.sites) {
			v.sites[site].keys[k[1]] = lines[i]
		}
		if len(k) == 3 && k[0] == "site" && k[1] == "route" && site >= 0 && site < len(locs) && route >= 0 && route < len(locs[site]) {
			locs[site][route].keys[k[2]] = lines[i]
		}
	}
	for si := range locs {
		for ri, loc := range locs[si] {
			if si >= len(c.Sites) || ri >= len(c.Sites[si].Routes) {
				continue
			}
			r := &c.Sites[si].Routes[ri]
			kind := r.Kind()
			if kind == "" {
				continue
			}
			allowed := append([]string{"path", "optional", kind}, routeKeys[kind]...)
			if kind == KindFastCGI && len(r.FastCGICmd) > 0 {
				allowed = append(allowed, fastcgiCommandKeys...)
			}
			for key, line := range loc.keys {
				if !slices.Contains(allowed, key) {
					v.add(line, "key %q does not apply to a %s route (path %q); it applies to: %s",
						key, kind, r.Path, appliesTo(key))
				}
			}
		}
	}
	return locs
}

func isEnvKey(k toml.Key) bool {
	return len(k) == 4 && k[0] == "site" && k[1] == "route" && k[2] == "env"
}

func appliesTo(key string) string {
	var kinds []string
	for _, kind := range []string{KindStatic, KindCGI, KindFastCGI, KindWSGI, KindProxy, KindRedirect} {
		if slices.Contains(routeKeys[kind], key) {
			kinds = append(kinds, kind)
		}
	}
	if slices.Contains(fastcgiCommandKeys, key) && !slices.Contains(kinds, KindFastCGI) {
		kinds = append(kinds, "fastcgi_command")
	}
	if len(kinds) == 0 {
		return "no route"
	}
	return strings.Join(kinds, ", ")
}

var knownKeys = map[string][]string{
	"":           {"server", "admin", "tls", "telescope", "site"},
	"server":     {"listen", "user", "access_log", "log_format", "error_log", "read_header_timeout", "read_timeout", "write_timeout", "idle_timeout", "shutdown_timeout", "max_body", "max_header", "body_temp", "body_temp_max", "fast_path", "tls_listen", "http3"},
	"tls":        {"email", "ca", "ca_root", "storage", "redirect", "hsts"},
	"admin":      {"listen", "password_hash"},
	"telescope":  {"enabled", "interface", "dark", "dark_ports", "scan_hosts", "scan_ports", "scan_idle", "dos_packets", "dos_duration", "dos_ppm"},
	"site":       {"hosts", "root", "index", "try_files", "symlinks", "tls", "tls_cert", "tls_key", "route"},
	"site.route": {"path", "static", "cgi", "fastcgi", "fastcgi_command", "wsgi", "proxy", "redirect", "timeout", "env", "processes", "threads", "max_requests", "max_processes", "python", "chdir", "mode", "reload", "pass_authorization", "user", "index", "split", "root", "allow_dotfiles", "status", "optional", "max_conns", "trusted_proxies", "sendfile_root", "request_buffering"},
}

// suggest names a known key close to an unknown one, or the section it belongs in.
func suggest(k toml.Key) string {
	parent, name := strings.Join(k[:len(k)-1], "."), k[len(k)-1]
	for _, cand := range knownKeys[parent] {
		if editDistance(cand, name) <= 2 {
			return fmt.Sprintf(" (did you mean %q?)", cand)
		}
	}
	for sec, keys := range knownKeys {
		if sec != parent && slices.Contains(keys, name) {
			if sec == "" {
				return fmt.Sprintf(" (it belongs at top level)")
			}
			return fmt.Sprintf(" (it belongs in [%s])", sec)
		}
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// locateKeys finds the line of each key, in the order toml reports them (file order).
// BurntSushi/toml keeps key positions private, so this scans the text: a table header
// "[a.b]" / "[[a.b]]" or a "name =" line, searched from the previous key's line on.
// Keys inside an inline table share their table's line.
func locateKeys(text string, keys []toml.Key) []int {
	lines := strings.Split(text, "\n")
	out := make([]int, len(keys))
	cur := 0
	for i, k := range keys {
		full, last := k.String(), k[len(k)-1]
		if i > 0 && isPrefix(keys[i-1], k) && !strings.HasPrefix(strings.TrimSpace(lines[out[i-1]-1]), "[") {
			out[i] = out[i-1]
			continue
		}
		found := -1
		for j := cur; j < len(lines) && found < 0; j++ {
			l := strings.TrimSpace(lines[j])
			if l == "" || l[0] == '#' {
				continue
			}
			if l[0] == '[' {
				h := strings.TrimSpace(strings.Trim(strings.SplitN(l, "#", 2)[0], " []"))
				if h == full {
					found = j
				}
				continue
			}
			name, _, ok := strings.Cut(l, "=")
			name = strings.Trim(strings.TrimSpace(name), `"'`)
			if ok && (name == last || strings.HasSuffix(name, "."+last) || strings.HasPrefix(name, last+".")) {
				found = j
			}
		}
		if found < 0 {
			found = cur
		}
		out[i] = found + 1
		cur = found
	}
	return out
}

func isPrefix(p, k toml.Key) bool {
	if len(p) >= len(k) {
		return false
	}
	for i := range p {
		if p[i] != k[i] {
			return false
		}
	}
	return true
}

// Complete fills defaults into a config built in code (gantry serve DIR) and
// validates it like a file.
func (c *Config) Complete() error {
	v := &validator{file: c.File}
	c.setDefaults()
	c.validate(v, nil)
	if len(v.errs) > 0 {
		return v.errs
	}
	return nil
}
