package config_test

import (
	"encoding"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gantry/internal/config"
	_ "gantry/internal/server" // registers the handler kinds
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestGolden pins what every config in testdata means once read: each site's and
// route's keys with their defaults filled in, or every problem `gantry check`
// reports. A change in how routes are decoded, defaulted or validated shows here
// as a diff; run `go test ./internal/config -run Golden -update` when the change
// is meant.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no configs in testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			var got string
			c, err := config.Load(file)
			if err != nil {
				base, _ := filepath.Abs("testdata")
				got = rel(base, strings.ReplaceAll(err.Error(), file, filepath.Base(file))) + "\n"
				got = byLine(got)
			} else {
				got = describe(c)
			}
			golden := strings.TrimSuffix(file, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s:\n%s", file, golden, got)
			}
		})
	}
}

// describe lists, per site and route, every key that applies with its value after
// defaults; paths under testdata are shown relative to it.
func describe(c *config.Config) string {
	base, _ := filepath.Abs("testdata")
	var b strings.Builder
	for si := range c.Sites {
		s := &c.Sites[si]
		fmt.Fprintf(&b, "[[site]] hosts=%v root=%s index=%v try_files=%v symlinks=%s\n", s.Hosts, rel(base, s.Root), s.Index, s.TryFiles, s.Symlinks)
		for _, m := range s.Middleware {
			v := reflect.ValueOf(m).Elem()
			for i := 0; i < v.NumField(); i++ {
				if name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ","); name != "" && name != "-" {
					fmt.Fprintf(&b, "  %s = %s\n", name, show(v.Field(i)))
				}
			}
		}
		for ri := range s.Routes {
			r := &s.Routes[ri]
			fmt.Fprintf(&b, "  [[site.route]] path=%q kind=%s target=%s\n", r.Path, r.Kind(), rel(base, r.Target()))
			for _, kv := range routeValues(r) {
				fmt.Fprintf(&b, "    %s = %s\n", kv[0], rel(base, kv[1]))
			}
		}
	}
	return b.String()
}

// routeValues is each key of r's handler, sorted, with its value.
func routeValues(r *config.Route) [][2]string {
	var out [][2]string
	out = append(out, [2]string{"optional", fmt.Sprint(r.Optional)})
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			switch {
			case f.Anonymous && name == "":
				walk(v.Field(i))
			case name != "" && name != "-" && name != r.Kind():
				out = append(out, [2]string{name, show(v.Field(i))})
			}
		}
	}
	walk(reflect.ValueOf(r.Handler).Elem())
	for _, m := range r.Middleware {
		walk(reflect.ValueOf(m).Elem())
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return out
}

func show(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "unset"
		}
		v = v.Elem()
	}
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		b, _ := m.MarshalText()
		return string(b)
	}
	if v.Kind() == reflect.Map {
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v.MapIndex(k)))
		}
		return "{" + strings.Join(parts, " ") + "}"
	}
	return fmt.Sprintf("%v", v.Interface())
}

func rel(base, s string) string {
	if s == base {
		return "."
	}
	return strings.ReplaceAll(s, base+"/", "")
}

// byLine orders problem lines by their line number, keeping the order of those on
// one line.
func byLine(s string) string {
	lines := strings.SplitAfter(s, "\n")
	lineNo := func(l string) int {
		n := 0
		if _, rest, ok := strings.Cut(l, ".toml:"); ok {
			fmt.Sscanf(rest, "%d", &n)
		}
		return n
	}
	slices.SortStableFunc(lines, func(a, b string) int { return lineNo(a) - lineNo(b) })
	return strings.Join(lines, "")
}
