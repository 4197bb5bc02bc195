// Package demo holds the checks for the demo site that the README runs: every
// page is complete (lang, title, viewport), every local link and asset
// exists, nothing loads from a CDN, and the ARIA wiring points at real ids.
package demo

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// gatewayMounts are the folders other handlers serve (CGI scripts, PHP
// through FastCGI, the WSGI to-do app). Links into them are checked once the
// folder exists or gantry.toml routes it.
var gatewayMounts = []string{"/cgi-bin/", "/php/", "/todo/"}

type tag struct {
	name  string
	attrs map[string]string
	text  string // for <title>: the text up to </title>
}

var attrRE = regexp.MustCompile(`([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>` + "`" + `]+)))?`)

// tokenize returns the start tags of an HTML document. It knows just enough
// HTML for these pages: comments, doctype, end tags, quoted attribute values
// that may contain '>', and raw-text elements (script, style, title).
func tokenize(src string) []tag {
	var tags []tag
	for i := 0; i < len(src); {
		lt := strings.IndexByte(src[i:], '<')
		if lt < 0 {
			break
		}
		i += lt
		switch {
		case strings.HasPrefix(src[i:], "<!--"):
			end := strings.Index(src[i+4:], "-->")
			if end < 0 {
				return tags
			}
			i += 4 + end + 3
			continue
		case strings.HasPrefix(src[i:], "<!"), strings.HasPrefix(src[i:], "</"):
			end := strings.IndexByte(src[i:], '>')
			if end < 0 {
				return tags
			}
			i += end + 1
			continue
		}
		j := i + 1
		for j < len(src) && (isAlnum(src[j]) || src[j] == '-') {
			j++
		}
		if j == i+1 {
			i++
			continue
		}
		t := tag{name: strings.ToLower(src[i+1 : j]), attrs: map[string]string{}}
		// Find the closing '>' outside quotes.
		k, quote := j, byte(0)
		for ; k < len(src); k++ {
			c := src[k]
			if quote != 0 {
				if c == quote {
					quote = 0
				}
			} else if c == '"' || c == '\'' {
				quote = c
			} else if c == '>' {
				break
			}
		}
		for _, m := range attrRE.FindAllStringSubmatch(src[j:min(k, len(src))], -1) {
			t.attrs[strings.ToLower(m[1])] = m[2] + m[3] + m[4]
		}
		i = min(k+1, len(src))
		if t.name == "script" || t.name == "style" || t.name == "title" {
			end := strings.Index(strings.ToLower(src[i:]), "</"+t.name)
			if end < 0 {
				end = len(src) - i
			}
			t.text = src[i : i+end]
			i += end
		}
		tags = append(tags, t)
	}
	return tags
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func pages(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p == filepath.Join("assets", "partials") {
			return filepath.SkipDir // page parts, not pages
		}
		if strings.HasSuffix(p, ".html") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("found only %d pages: %v", len(out), out)
	}
	return out
}

// routed reports the route paths gantry.toml gives a non-static handler.
func routed(t *testing.T) []string {
	t.Helper()
	var cfg struct {
		Site []struct {
			Route []map[string]any `toml:"route"`
		} `toml:"site"`
	}
	if _, err := toml.DecodeFile("gantry.toml", &cfg); err != nil {
		t.Fatalf("gantry.toml: %v", err)
	}
	var out []string
	for _, s := range cfg.Site {
		for _, r := range s.Route {
			if p, ok := r["path"].(string); ok {
				if _, static := r["static"]; !static {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// resolve maps a local URL in page to a file under the site root; "" for
// external and in-page URLs.
func resolve(page, ref string) (string, bool) {
	if ref == "" || strings.HasPrefix(ref, "#") || strings.HasPrefix(ref, "mailto:") {
		return "", false
	}
	if strings.Contains(ref, "://") || strings.HasPrefix(ref, "//") || strings.HasPrefix(ref, "data:") {
		return "", false
	}
	ref, _, _ = strings.Cut(ref, "#")
	ref, _, _ = strings.Cut(ref, "?")
	if strings.HasPrefix(ref, "/") {
		return ref, true
	}
	return path.Join("/", path.Dir(filepath.ToSlash(page)), ref) + map[bool]string{true: "/", false: ""}[strings.HasSuffix(ref, "/")], true
}

func TestPagesAreComplete(t *testing.T) {
	for _, p := range pages(t) {
		t.Run(p, func(t *testing.T) {
			src, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			tags := tokenize(string(src))
			var lang, title, viewport, charset bool
			for _, tg := range tags {
				switch tg.name {
				case "html":
					lang = strings.TrimSpace(tg.attrs["lang"]) != ""
				case "title":
					title = strings.TrimSpace(tg.text) != ""
				case "meta":
					if tg.attrs["name"] == "viewport" && strings.Contains(tg.attrs["content"], "width=device-width") {
						viewport = true
					}
					if strings.EqualFold(tg.attrs["charset"], "utf-8") {
						charset = true
					}
				case "img":
					if _, ok := tg.attrs["alt"]; !ok {
						t.Errorf("<img src=%q> has no alt", tg.attrs["src"])
					}
				case "button":
					// A button without a type submits its form: say which is meant.
					if tg.attrs["type"] == "" {
						t.Errorf("<button> without type (%v)", tg.attrs)
					}
				}
			}
			if !lang {
				t.Error("<html> has no lang")
			}
			if !title {
				t.Error("no non-empty <title>")
			}
			if !viewport {
				t.Error(`no <meta name="viewport" content="width=device-width, ...">`)
			}
			if !charset {
				t.Error(`no <meta charset="utf-8">`)
			}
		})
	}
}

// Every page has the demo's head links, header and footer exactly as in
// assets/partials, which the CGI, PHP and WSGI pieces read when they render: one
// site, whichever piece serves the page.
func TestPagesShareTheParts(t *testing.T) {
	var parts []string
	for _, name := range []string{"head.html", "header.html", "footer.html"} {
		b, err := os.ReadFile(filepath.Join("assets", "partials", name))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, string(b))
	}
	for _, p := range pages(t) {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, part := range parts {
			if !strings.Contains(string(src), part) {
				t.Errorf("%s: differs from assets/partials/%s", p, []string{"head.html", "header.html", "footer.html"}[i])
			}
		}
		if strings.Contains(string(src), "(visual only)") {
			t.Errorf("%s: says the login is visual only; it signs in", p)
		}
	}
}

func TestLocalLinksResolve(t *testing.T) {
	routes := routed(t)
	for _, p := range pages(t) {
		t.Run(p, func(t *testing.T) {
			src, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, tg := range tokenize(string(src)) {
				for _, attr := range []string{"href", "src", "action", "poster"} {
					ref, ok := tg.attrs[attr]
					if !ok {
						continue
					}
					if tg.name != "a" && (strings.Contains(ref, "://") || strings.HasPrefix(ref, "//")) {
						t.Errorf("<%s %s=%q> loads from another site; the demo has no CDN", tg.name, attr, ref)
						continue
					}
					local, ok := resolve(p, ref)
					if !ok {
						continue
					}
					checkLocal(t, tg.name, local, routes)
				}
			}
		})
	}
}

func checkLocal(t *testing.T, el, local string, routes []string) {
	t.Helper()
	for _, m := range gatewayMounts {
		if strings.HasPrefix(local, m) {
			if slices.ContainsFunc(routes, func(r string) bool { return strings.HasPrefix(local, r) }) {
				return
			}
			if fi, err := os.Stat("." + strings.TrimSuffix(m, "/")); err == nil && fi.IsDir() {
				return
			}
			t.Logf("<%s> links %s: served by another gateway, not added to the demo yet", el, local)
			return
		}
	}
	file := "." + local
	if strings.HasSuffix(local, "/") {
		file += "index.html"
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Errorf("<%s> links %s: %v", el, local, err)
		return
	}
	if fi.IsDir() {
		t.Errorf("<%s> links directory %s without its trailing slash", el, local)
	}
}

// TestIDReferences checks that ARIA and script wiring names ids that exist
// on the same page, and that no id is used twice.
func TestIDReferences(t *testing.T) {
	refAttrs := []string{"aria-controls", "aria-labelledby", "aria-describedby", "for",
		"popovertarget", "data-open", "data-pager", "data-status", "data-demo", "data-login", "data-preview"}
	for _, p := range pages(t) {
		t.Run(p, func(t *testing.T) {
			src, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			tags := tokenize(string(src))
			ids := map[string]bool{}
			for _, tg := range tags {
				if id, ok := tg.attrs["id"]; ok {
					if ids[id] {
						t.Errorf("id %q used twice", id)
					}
					ids[id] = true
				}
			}
			for _, tg := range tags {
				for _, a := range refAttrs {
					for _, id := range strings.Fields(tg.attrs[a]) {
						if !ids[id] {
							t.Errorf("<%s %s=%q>: no element has id %q", tg.name, a, tg.attrs[a], id)
						}
					}
				}
				if h := tg.attrs["href"]; strings.HasPrefix(h, "#") && len(h) > 1 && !ids[h[1:]] {
					t.Errorf("<%s href=%q>: no such id", tg.name, h)
				}
				if tg.attrs["role"] == "tab" && tg.name != "button" {
					t.Errorf("role=tab on <%s>: tabs must be buttons to be keyboard-reachable", tg.name)
				}
			}
		})
	}
}

// Every gallery page is listed on the gallery index, so none is orphaned.
func TestGalleryIndexListsEveryPiece(t *testing.T) {
	src, err := os.ReadFile("gallery/index.html")
	if err != nil {
		t.Fatal(err)
	}
	linked := map[string]bool{}
	for _, tg := range tokenize(string(src)) {
		if l, ok := resolve("gallery/index.html", tg.attrs["href"]); ok && tg.name == "a" {
			linked[l] = true
		}
	}
	files, _ := filepath.Glob("gallery/*.html")
	for _, f := range files {
		if f == filepath.Join("gallery", "index.html") {
			continue
		}
		if !linked["/"+filepath.ToSlash(f)] {
			t.Errorf("gallery/index.html does not link %s", f)
		}
	}
}

func TestTokenize(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // name and sorted attrs of each tag
	}{
		{"plain", `<a href="/x">y</a>`, []string{"a href=/x"}},
		{"quoted gt", `<img alt="a > b" src='s.png'>`, []string{"img alt=a > b src=s.png"}},
		{"unquoted and bare", `<input type=email required>`, []string{"input required= type=email"}},
		{"comment hides tags", `<!-- <a href="/gone"> --><p>`, []string{"p"}},
		{"script is raw text", `<script>if (a<b) x("<a href=/no>")</script><br>`, []string{"script", "br"}},
		{"doctype and end tags", "<!doctype html><HTML LANG=en></html>", []string{"html lang=en"}},
		{"title text", `<title>Hi &amp; bye</title>`, []string{"title"}},
		{"lone lt", `a < b <i>`, []string{"i"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, tg := range tokenize(tc.src) {
				s := tg.name
				keys := make([]string, 0, len(tg.attrs))
				for k := range tg.attrs {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				for _, k := range keys {
					s += " " + k + "=" + tg.attrs[k]
				}
				got = append(got, s)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if tg := tokenize(`<title>Hi there</title>`); tg[0].text != "Hi there" {
		t.Errorf("title text %q", tg[0].text)
	}
}

// FuzzTokenize: the tokenizer never panics and never loops on any input.
func FuzzTokenize(f *testing.F) {
	f.Add(`<a href="/x">y</a>`)         // ordinary tag
	f.Add(`<img alt="unterminated`)     // quote never closed
	f.Add(`<!-- never closed`)          // open comment
	f.Add(`<script>never closed`)       // open raw text
	f.Add(`<<<>>><a<b c=d e='f'g="h">`) // junk around tags
	f.Add("<p\x00 q=\xff>")             // bytes that are not text
	f.Fuzz(func(t *testing.T, src string) {
		for _, tg := range tokenize(src) {
			if tg.name == "" {
				t.Fatalf("empty tag name from %q", src)
			}
		}
	})
}
