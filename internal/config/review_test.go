package config_test

import (
	"strings"
	"testing"

	"gantry/internal/config"
)

// An array of tables may be written inline (route = [{...}]); TOML makes it the
// same value as [[site.route]] sections, and gantry before the options redesign
// decoded it so. An upgrade must not turn such a config into "no handler".
func TestInlineArraysOfTables(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, toml string
	}{
		{"inline routes", "[[site]]\nroot = \"" + dir + "\"\nroute = [ { path = \"/x/\", static = \"" + dir + "\" } ]\n"},
		{"inline sites", "site = [ { root = \"" + dir + "\", route = [ { path = \"/x/\", static = \"" + dir + "\" } ] } ]\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse("cfg.toml", tc.toml)
			if err != nil {
				t.Fatalf("refused:\n%v", err)
			}
			if len(c.Sites) != 1 || len(c.Sites[0].Routes) != 1 {
				t.Fatalf("want one site with one route, got %+v", c.Sites)
			}
			r := c.Sites[0].Routes[0]
			if r.Path != "/x/" || r.Kind() != "static" || r.Target() != dir {
				t.Errorf("route decoded as path %q kind %q target %q; want \"/x/\" static %q", r.Path, r.Kind(), r.Target(), dir)
			}
		})
	}
}

// A key whose value is a table (headers, env) given a string or a number must be
// refused at its line: BurntSushi/toml silently leaves a map empty when the value
// is not a table, so without a check the rules or variables are dropped unseen.
func TestTableKeyGivenAScalar(t *testing.T) {
	dir := t.TempDir()
	route := "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/\"\n"
	tests := []struct {
		name, toml, want string
	}{
		{"route headers a string", route + "  static = \"" + dir + "\"\n  headers = \"X-Frame-Options: DENY\"\n", "cfg.toml:6:"},
		{"site headers a string", "[[site]]\nroot = \"" + dir + "\"\nheaders = \"X-Frame-Options: DENY\"\n", "cfg.toml:3:"},
		{"wsgi env a string", route + "  wsgi = \"app:application\"\n  env = \"DJANGO_SETTINGS_MODULE=x.settings\"\n", "cfg.toml:6:"},
		{"cgi env a number", route + "  cgi = \"" + dir + "\"\n  env = 1\n", "cfg.toml:6:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("cfg.toml", tc.toml)
			if err == nil {
				t.Fatal("accepted; the key's value is silently dropped")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n%s\nlacks %q", err, tc.want)
			}
		})
	}
}

// A value of the wrong type inside a table key (env = { A = 1 }) is reported at
// that key's line, as before the redesign, not at the [[site.route]] or [[site]]
// header; and it is the one problem reported, with no knock-on "empty path" or
// "neither root nor routes" about keys that were fine.
func TestNestedTypeErrorAtItsLine(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, toml, want string
	}{
		{"route env value", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/\"\n  wsgi = \"app:application\"\n  env = { A = 1 }\n", "cfg.toml:6: "},
		{"route headers value", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/\"\n  static = \"" + dir + "\"\n  headers = { X-A = 1 }\n", "cfg.toml:6: "},
		{"site headers value", "[[site]]\nroot = \"" + dir + "\"\nheaders = { X-A = 1 }\n", "cfg.toml:3: "},
		{"site hosts a string", "[[site]]\nroot = \"" + dir + "\"\nhosts = \"example.com\"\n", "cfg.toml:3: "},
		// The root is the site's one problem: not also "neither root nor routes".
		{"site root a number", "[[site]]\nroot = 5\n", "cfg.toml:2: "},
		{"site root an array, among other keys", "[[site]]\nhosts = [\"a.example\"]\nroot = [\"" + dir + "\"]\n", "cfg.toml:3: "},
		// The keys inside a value of the wrong type, or inside an unknown key, are
		// not problems of their own.
		{"server listen a nested table", "[server]\nlisten = { host = \"a\", port = { n = 1 } }\n[[site]]\nroot = \"" + dir + "\"\n", "cfg.toml:2: "},
		{"keys inside an unknown key", "[server]\nlistn = { a = { b = 1 } }\n[[site]]\nroot = \"" + dir + "\"\n", "cfg.toml:2: unknown key \"listn\""},
		{"route optional a string", "[[site]]\nroot = \"" + dir + "\"\n  [[site.route]]\n  path = \"/\"\n  static = \"" + dir + "\"\n  optional = \"yes\"\n", "cfg.toml:6: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("cfg.toml", tc.toml)
			if err == nil {
				t.Fatal("accepted")
			}
			errs, ok := err.(config.Errors)
			if !ok || len(errs) != 1 || !strings.HasPrefix(errs[0].String(), tc.want) {
				t.Errorf("want one problem at %q, got\n%v", tc.want, err)
			}
		})
	}
}

// TestUnknownTableOnceAmongTypeErrors: with a value of the wrong type elsewhere
// (the key-by-key decoding), an unknown key holding a table is one problem, at
// top level and in a site, not one more for each key inside it.
func TestUnknownTableOnceAmongTypeErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, toml string
		want       int
	}{
		{"in a section", "[server]\nlisten = 1\n[telescope.ban]\nx = { y = 1 }\n[[site]]\nroot = \"" + dir + "\"\n", 2},
		{"in a site", "[[site]]\nroot = \"" + dir + "\"\nindex = 3\nextra = { y = { z = 1 } }\n", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("cfg.toml", tc.toml)
			if errs, ok := err.(config.Errors); !ok || len(errs) != tc.want {
				t.Errorf("want %d problems (the wrong type, each unknown key once), got\n%v", tc.want, err)
			}
		})
	}
}
