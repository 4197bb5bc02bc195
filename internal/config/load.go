package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Problem is one thing wrong with a config, at a line of its file when known.
type Problem struct {
	File string
	Line int
	// Key is the route key the problem is about, when a handler's options report
	// it; config turns it into the key's line.
	Key string
	Msg string
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

// file is a config file as decoded: each route stays raw until its keys have
// said which handler kind's options they are.
type file struct {
	Config
	Sites []toml.Primitive `toml:"site"`
}

type rawSite struct {
	Site
	Routes []toml.Primitive `toml:"route"`
}

// Parse is Load for a config already in memory; file names it in messages.
func Parse(name, text string) (*Config, error) {
	var f file
	md, err := toml.Decode(text, &f)
	var typeErrs []keyTypeError
	if err != nil {
		// Valid TOML with a value of the wrong type: decode again key by key, to
		// report them all and check the rest.
		var top map[string]toml.Primitive
		md2, err2 := toml.Decode(text, &top)
		if err2 != nil {
			var pe toml.ParseError
			if errors.As(err, &pe) {
				return nil, Errors{{File: name, Line: pe.Position.Line, Msg: pe.Message}}
			}
			return nil, Errors{{File: name, Msg: err.Error()}}
		}
		f, md = file{}, md2
		typeErrs = decodeByKey(md, top, &f)
	}
	c := &f.Config
	c.File, c.Text = name, text
	v := &validator{file: name}
	locs := locate(v, md, text)
	for _, te := range typeErrs {
		if te.err == nil {
			k := toml.Key(strings.Split(te.key, "."))
			v.addKey(te.key, "unknown key %q in [%s]%s", k[len(k)-1], strings.Join(k[:len(k)-1], "."), suggest(k))
			v.bad(te.key) // reported: not again, nor the keys inside it
			continue
		}
		v.addKey(te.key, "key %q: %s", te.key, te.problem())
		v.bad(te.key)
	}
	c.Sites = make([]Site, len(f.Sites))
	for si, raw := range f.Sites {
		if si >= len(locs) {
			// An inline table (site = [{...}]): toml lists no [[site]] for it.
			loc := inlineLoc(md, raw, v.keyLine["site"])
			v.sites = append(v.sites, loc)
			locs = append(locs, nil)
			for key, line := range loc.keys {
				if !slices.Contains(knownKeys()["site"], key) {
					v.add(line, "unknown key %q in [site]%s", key, suggest(toml.Key{"site", key}))
				}
			}
		}
		decodeSite(v, md, raw, &v.sites[si], &locs[si], &c.Sites[si])
	}
	reportUnknown(v, md)
	c.Server.writeTimeoutSet = md.IsDefined("server", "write_timeout")
	c.resolvePaths()
	c.setDefaults(locs)
	c.validate(v, locs)
	if len(v.errs) > 0 {
		slices.SortStableFunc(v.errs, func(a, b Problem) int { return a.Line - b.Line })
		return nil, v.errs
	}
	return c, nil
}

// routeLoc is where a route and its keys are in the file.
type routeLoc struct {
	line int
	keys map[string]int
	// broken: the route's handler or keys are wrong in a way that makes checking
	// its values pointless (no handler, several, a value of the wrong type).
	broken bool
	// reported: the keys whose wrong type is already reported (a key may be
	// decoded into more than one struct)
	reported map[string]bool
	// undecoded: the site's or route's own keys (hosts, path) could not be
	// decoded, so checking them would only report knock-on problems.
	undecoded bool
}

// lineOf is the line of key in the route, or the route's own line.
func (l *routeLoc) lineOf(key string) int {
	if n, ok := l.keys[key]; ok {
		return n
	}
	return l.line
}

// scope is what the options of route r, in site, see of the config; base is the
// directory relative paths start from.
func (l *routeLoc) scope(site *Site, r *Route, base string) *Scope {
	keys := make(map[string]bool, len(l.keys))
	for k := range l.keys {
		keys[k] = true
	}
	return &Scope{Site: site, Route: r, base: base, keys: keys}
}

type validator struct {
	file    string
	errs    Errors
	lines   []int           // the line of each of the file's keys, in toml's order
	keyLine map[string]int  // first line of each dotted key
	sites   []routeLoc      // where each [[site]] and its own keys are
	badKeys map[string]bool // keys already reported: a value of the wrong type, or unknown
}

// addKey reports a problem at the line of a top-level (non-array) key.
func (v *validator) addKey(key string, format string, args ...any) {
	v.add(v.keyLine[key], format, args...)
}

func (v *validator) add(line int, format string, args ...any) {
	v.errs = append(v.errs, Problem{File: v.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// locate finds the line of every key, and returns, per site and route, where each
// was defined so later checks can name lines.
func locate(v *validator, md toml.MetaData, text string) [][]routeLoc {
	v.lines = locateKeys(text, md.Keys())
	v.keyLine = map[string]int{}
	for i, k := range md.Keys() {
		if _, ok := v.keyLine[k.String()]; !ok {
			v.keyLine[k.String()] = v.lines[i]
		}
	}
	var locs [][]routeLoc
	site, route := -1, -1
	for i, k := range md.Keys() {
		ks, line := k.String(), v.lines[i]
		typ := md.Type(k...)
		switch {
		case ks == "site" && typ == "ArrayHash":
			site, route = site+1, -1
			v.sites = append(v.sites, routeLoc{line: line, keys: map[string]int{}})
			locs = append(locs, nil)
		case ks == "site.route" && typ == "ArrayHash":
			route++
			if site >= 0 {
				locs[site] = append(locs[site], routeLoc{line: line, keys: map[string]int{}})
			}
		case len(k) == 3 && k[0] == "site" && k[1] == "route":
			if site >= 0 && route >= 0 && route < len(locs[site]) {
				locs[site][route].keys[k[2]] = line
			}
		case len(k) == 2 && k[0] == "site" && site >= 0:
			v.sites[site].keys[k[1]] = line
		}
	}
	return locs
}

// reportUnknown reports the keys outside routes that nothing decoded (a route's
// keys are checked once its kind is known).
func reportUnknown(v *validator, md toml.MetaData) {
	undecoded := map[string]bool{}
	for _, k := range md.Undecoded() {
		undecoded[k.String()] = true
	}
	// covered: keys already reported (of the wrong type, or unknown) and every key
	// inside them, which is part of that problem and not one of its own. toml
	// lists a table before its keys, so looking at the parent is enough.
	covered := map[string]bool{}
	site := -1
	for i, k := range md.Keys() {
		ks, parent := k.String(), k[:len(k)-1].String()
		if ks == "site" && md.Type(k...) == "ArrayHash" {
			site++
		}
		inSite := len(k) >= 3 && k[0] == "site" && site >= 0 && site < len(v.sites) && v.sites[site].reported[k[1]]
		if v.badKeys[ks] || v.badKeys[parent] || covered[parent] || inSite {
			covered[ks] = true
			continue
		}
		// A site that did not decode left its other keys undecoded at random
		// (toml decodes a table's keys in map order): its type error says it all.
		badSite := len(k) == 2 && k[0] == "site" && site >= 0 && site < len(v.sites) && v.sites[site].undecoded
		if !undecoded[ks] || len(k) >= 3 && k[0] == "site" && k[1] == "route" || badSite {
			continue
		}
		covered[ks] = true
		where := "at top level"
		if parent := strings.Join(k[:len(k)-1], "."); parent != "" {
			where = "in [" + parent + "]"
		}
		v.add(v.lines[i], "unknown key %q %s%s", k[len(k)-1], where, suggest(k))
		delete(undecoded, ks)
	}
}

// decodeSite decodes a site's keys into site: its own, the defaults it gives its
// routes' middleware, and its routes.
func decodeSite(v *validator, md toml.MetaData, raw toml.Primitive, loc *routeLoc, locs *[]routeLoc, site *Site) {
	var rs rawSite
	if err := md.PrimitiveDecode(raw, &rs); err != nil {
		// Key by key, so that each wrong value is reported and the others checked.
		rs = rawSite{}
		errs := decodeTable(md, raw, reflect.ValueOf(&rs).Elem(), "")
		if len(errs) == 0 {
			v.typeError(err, loc)
			loc.broken, loc.undecoded = true, true
			return
		}
		for _, te := range errs {
			switch {
			case te.err != nil:
				v.add(loc.lineOf(te.key), "key %q: %s", te.key, te.problem())
				v.bad("site." + te.key)
				if loc.reported == nil {
					loc.reported = map[string]bool{}
				}
				loc.reported[te.key] = true
			case !slices.Contains(knownKeys()["site"], te.key):
				v.add(loc.lineOf(te.key), "unknown key %q in [site]%s", te.key, suggest(toml.Key{"site", te.key}))
				if loc.reported == nil {
					loc.reported = map[string]bool{}
				}
				loc.reported[te.key] = true
			}
		}
	}
	*site = rs.Site
	site.Middleware = decodeMiddleware(v, md, raw, loc)
	site.Routes = make([]Route, len(rs.Routes))
	for ri, r := range rs.Routes {
		if ri >= len(*locs) {
			// An inline table (route = [{...}]): toml lists no [[site.route]] for it.
			*locs = append(*locs, inlineLoc(md, r, loc.lineOf("route")))
		}
		decodeRoute(v, md, r, &(*locs)[ri], &site.Routes[ri])
	}
}

// inlineLoc is the routeLoc of a site or route written as an inline table: its keys
// all at line, the line of the key that holds the array.
func inlineLoc(md toml.MetaData, raw toml.Primitive, line int) routeLoc {
	loc := routeLoc{line: line, keys: map[string]int{}}
	var keys map[string]toml.Primitive
	if md.PrimitiveDecode(raw, &keys) == nil {
		for k := range keys {
			loc.keys[k] = line
		}
	}
	return loc
}

// decodeMiddleware decodes the keys of each registered middleware from a site's
// or a route's table, in registration order; nil when a value has the wrong type.
func decodeMiddleware(v *validator, md toml.MetaData, raw toml.Primitive, loc *routeLoc) []Settings {
	out := make([]Settings, len(registry.middleware))
	bad := false
	for i, m := range registry.middleware {
		out[i] = m.Options()
		if errs := decodeKeys(md, raw, out[i]); errs != nil {
			v.keyErrors(errs, loc)
			bad = true
		}
	}
	if bad {
		return nil
	}
	return out
}

// keyErrors reports values of the wrong type in the site or route at loc, each
// at its key's line, and marks it broken: its other checks would only repeat
// them.
func (v *validator) keyErrors(errs []keyTypeError, loc *routeLoc) {
	loc.broken = true
	for _, e := range errs {
		if e.key == "" {
			v.typeError(e.err, loc)
			continue
		}
		if loc.reported[e.key] {
			continue
		}
		if loc.reported == nil {
			loc.reported = map[string]bool{}
		}
		loc.reported[e.key] = true
		top, _, _ := strings.Cut(e.key, ".")
		v.add(loc.lineOf(top), "key %q: %s", e.key, e.problem())
		// The keys under it are not also unknown, in a site or a route.
		var pe toml.ParseError
		if errors.As(e.err, &pe) && pe.LastKey != "" {
			v.bad(pe.LastKey)
		}
		v.bad("site." + e.key)
		v.bad("site.route." + e.key)
	}
}

// decodeRoute decodes a route's keys into r: path and optional into the Route,
// the rest into the options of the handler kind they select.
func decodeRoute(v *validator, md toml.MetaData, raw toml.Primitive, loc *routeLoc, r *Route) {
	if errs := decodeKeys(md, raw, r); errs != nil {
		v.keyErrors(errs, loc)
		for _, e := range errs {
			switch e.key {
			case "":
				loc.undecoded = true
				return
			case "path":
				loc.undecoded = true // the other keys are still decoded, to report theirs
			}
		}
	}
	common, _ := routeKeys()
	for key, line := range loc.keys {
		if !slices.Contains(common, key) && appliesTo(key) == "no route" {
			v.add(line, "unknown key %q in [site.route]%s", key, suggest(toml.Key{"site", "route", key}))
		}
	}
	kinds := kindsSelected(loc.keys)
	switch len(kinds) {
	case 0:
		v.add(loc.line, "route %q has no handler: set one of %s", r.Path, selectorKeys())
		loc.broken = true
		return
	case 1:
	default:
		names := make([]string, len(kinds))
		for i, k := range kinds {
			names[i] = k.Name
		}
		v.add(loc.line, "route %q sets several handlers (%s): keep exactly one", r.Path, strings.Join(names, ", "))
		loc.broken = true
		return
	}
	kind := kinds[0]
	common, byKind := routeKeys()
	for key, line := range loc.keys {
		if !slices.Contains(common, key) && !slices.Contains(byKind[kind.Name], key) && appliesTo(key) != "no route" {
			v.add(line, "key %q does not apply to a %s route (path %q); it applies to: %s", key, kind.Name, r.Path, appliesTo(key))
		}
	}
	r.Middleware = decodeMiddleware(v, md, raw, loc)
	opts := kind.Options()
	if errs := decodeKeys(md, raw, opts); errs != nil {
		v.keyErrors(errs, loc)
	}
	if loc.broken {
		return
	}
	r.Handler = opts
}

// typeError reports a value of the wrong type; the keys under it are then not
// reported again as unknown.
func (v *validator) typeError(err error, loc *routeLoc) {
	line, msg := typeError(err, loc)
	v.add(line, "%s", msg)
	var pe toml.ParseError
	if errors.As(err, &pe) && pe.LastKey != "" {
		v.bad(pe.LastKey)
	}
}

// bad notes that the dotted key's value had the wrong type: it is not also unknown.
func (v *validator) bad(key string) {
	if v.badKeys == nil {
		v.badKeys = map[string]bool{}
	}
	v.badKeys[key] = true
}

// typeError words a value of the wrong type in a route at its key's line: toml's own
// message names the key but not reliably its line.
func typeError(err error, loc *routeLoc) (int, string) {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, "(last key \""); ok {
		if key, why, ok := strings.Cut(rest, "\"): "); ok {
			// The last key may be inside a table value (env.A): its line is the
			// line of the route's or site's own key that holds it.
			parts := strings.Split(key, ".")
			key = parts[len(parts)-1]
			for i, p := range parts {
				if _, ok := loc.keys[p]; ok && p != "site" && p != "route" {
					key = strings.Join(parts[i:], ".")
					return loc.lineOf(p), fmt.Sprintf("key %q: %s", key, typeWhy(why))
				}
			}
			return loc.lineOf(key), fmt.Sprintf("key %q: %s", key, typeWhy(why))
		}
	}
	return loc.line, strings.TrimPrefix(msg, "toml: ")
}

func typeWhy(why string) string {
	return strings.Replace(strings.TrimPrefix(why, "incompatible types: "), "; destination has type ", "; want ", 1)
}

// knownKeys lists each section's keys, read from the structs they decode into.
func knownKeys() map[string][]string {
	common, byKind := routeKeys()
	route := slices.Clone(common)
	for _, k := range registry.kinds {
		for _, key := range byKind[k.Name] {
			if !slices.Contains(route, key) {
				route = append(route, key)
			}
		}
	}
	return map[string][]string{
		"":              keysOf(reflect.TypeOf(Config{})),
		"server":        keysOf(reflect.TypeOf(Server{})),
		"admin":         keysOf(reflect.TypeOf(Admin{})),
		"tls":           keysOf(reflect.TypeOf(TLS{})),
		"telescope":     keysOf(reflect.TypeOf(Telescope{})),
		"telescope.ban": keysOf(reflect.TypeOf(Ban{})),
		"site":          append(keysOf(reflect.TypeOf(Site{})), common[len(keysOf(reflect.TypeOf(Route{}))):]...),
		"site.route":    route,
	}
}

// suggest names a known key close to an unknown one, or the section it belongs in.
func suggest(k toml.Key) string {
	parent, name := strings.Join(k[:len(k)-1], "."), k[len(k)-1]
	known := knownKeys()
	for _, cand := range known[parent] {
		if editDistance(cand, name) <= 2 {
			return fmt.Sprintf(" (did you mean %q?)", cand)
		}
	}
	for _, sec := range slices.Sorted(maps.Keys(known)) {
		keys := known[sec]
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
	c.setDefaults(nil)
	c.validate(v, nil)
	if len(v.errs) > 0 {
		return v.errs
	}
	return nil
}
