package errpage

import (
	"strings"
	"testing"

	"gantry/internal/config"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		errors config.Strings
		root   string
		bad    string // a part of the one problem; "" for none
	}{
		{"a page", config.Strings{"404": "/404.html"}, "/srv", ""},
		{"several", config.Strings{"404": "/e/404.html", "503": "/busy.html"}, "/srv", ""},
		{"not a number", config.Strings{"notfound": "/404.html"}, "/srv", "not an error status"},
		{"a success status", config.Strings{"200": "/ok.html"}, "/srv", "not an error status"},
		{"a redirect status", config.Strings{"302": "/x.html"}, "/srv", "not an error status"},
		{"beyond 599", config.Strings{"600": "/x.html"}, "/srv", "not an error status"},
		{"a leading zero", config.Strings{"0404": "/x.html"}, "/srv", "not an error status"},
		{"a relative page", config.Strings{"404": "404.html"}, "/srv", "not a file's path"},
		{"a page that climbs out", config.Strings{"404": "/../etc/passwd"}, "/srv", "not a file's path"},
		{"a directory", config.Strings{"404": "/errors/"}, "/srv", "not a file's path"},
		{"a query", config.Strings{"404": "/404.html?x=1"}, "/srv", "not a file's path"},
		{"a site without a root", config.Strings{"404": "/404.html"}, "", "no root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &Options{Errors: tc.errors}
			probs := o.Validate(&config.Scope{Site: &config.Site{Root: tc.root}})
			if tc.bad == "" {
				if len(probs) != 0 {
					t.Fatalf("problems: %v", probs)
				}
				return
			}
			if len(probs) != 1 || probs[0].Key != "errors" || !strings.Contains(probs[0].Msg, tc.bad) {
				t.Fatalf("problems %v, want one naming %q", probs, tc.bad)
			}
		})
	}
}

// A route's entries replace the site's for their status and keep the others.
func TestProvisionMergesSiteAndRoute(t *testing.T) {
	site := &Options{Errors: config.Strings{"404": "/404.html", "500": "/500.html"}}
	s := &config.Site{Root: "/srv", Middleware: []config.Settings{site}}
	route := &Options{Errors: config.Strings{"404": "/api/404.json"}}
	route.Provision(&config.Scope{Site: s, Route: &config.Route{Path: "/api/"}})
	if route.pages[404] != "api/404.json" || route.pages[500] != "500.html" || len(route.pages) != 2 {
		t.Errorf("pages %v", route.pages)
	}
}

// FuzzParse: any table is either accepted as pages under the root or refused
// with a reason, never both, and never a page that leaves the root.
func FuzzParse(f *testing.F) {
	f.Add("404", "/404.html")   // the usual
	f.Add("500", "/../x")       // climbs out
	f.Add("4o4", "/x.html")     // not a number
	f.Add("404", "/a/./b.html") // not clean
	f.Add("599", "/\x00.html")  // a NUL
	f.Add("-404", "/x.html")    // a sign
	f.Fuzz(func(t *testing.T, k, v string) {
		pages, bad := parse(map[string]string{k: v})
		if len(pages)+len(bad) != 1 {
			t.Fatalf("%q=%q: %d pages, %d problems", k, v, len(pages), len(bad))
		}
		for code, p := range pages {
			if code < 400 || code > 599 || strings.HasPrefix(p, "/") || strings.Contains("/"+p+"/", "/../") {
				t.Fatalf("%q=%q accepted as %d %q", k, v, code, p)
			}
		}
	})
}
