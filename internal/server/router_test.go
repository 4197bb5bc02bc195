package server

import "testing"

func TestRouteMatch(t *testing.T) {
	s := newSite("default", nil, []*route{
		{path: "/"}, {path: "/static/"}, {path: "/static/deep/"}, {path: "/exact"},
		{path: "*.php"}, {path: "/blog/*.php"}, {path: "/cgi-bin/"},
	})
	tests := []struct {
		name, path, want string
	}{
		{"root catches all", "/anything/here", "/"},
		{"longest prefix wins", "/static/deep/x.css", "/static/deep/"},
		{"prefix", "/static/a.css", "/static/"},
		{"prefix without slash goes to prefix route (it redirects)", "/static", "/static/"},
		{"exact before everything", "/exact", "/exact"},
		{"exact is not a prefix", "/exact/more", "/"},
		{"suffix", "/index.php", "*.php"},
		{"suffix with path info", "/info.php/extra/x", "*.php"},
		{"suffix under prefix beats plain suffix", "/blog/post.php", "/blog/*.php"},
		{"suffix beats prefix", "/static/x.php", "*.php"},
		{"a bare .php segment is no script", "/uploads/x.jpg/.php", "/"},
		{"suffix must end a segment", "/x.phpx", "/"},
		{"later segment may end in suffix", "/a.phpx/b.php", "*.php"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.match(tc.path)
			if r == nil || r.path != tc.want {
				got := "<nil>"
				if r != nil {
					got = r.path
				}
				t.Errorf("match(%q) = %s, want %s", tc.path, got, tc.want)
			}
		})
	}
}

func TestHostLookup(t *testing.T) {
	def := newSite("default", nil, nil)
	ex := newSite("example.com", []string{"example.com", "www.example.com"}, nil)
	wild := newSite("*.example.com", []string{"*.example.com"}, nil)
	deep := newSite("*.api.example.com", []string{"*.API.example.com"}, nil)
	tab := newHostTable([]*site{def, ex, wild, deep})
	tests := []struct {
		name, host string
		want       *site
		named      bool
	}{
		{"exact", "example.com", ex, true},
		{"case and port ignored", "WWW.Example.COM:8080", ex, true},
		{"trailing dot", "example.com.", ex, true},
		{"wildcard", "blog.example.com", wild, true},
		{"longest wildcard", "v1.api.example.com", deep, true},
		{"wildcard needs a label", ".example.com", def, false},
		{"unknown host gets default", "other.org", def, false},
		{"ip literal gets default", "192.0.2.1:80", def, false},
		{"ipv6 literal", "[::1]:8080", def, false},
		{"empty host", "", def, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, named := tab.lookup(tc.host)
			if got != tc.want || named != tc.named {
				t.Errorf("lookup(%q) = %v,%v want %v,%v", tc.host, got.name, named, tc.want.name, tc.named)
			}
		})
	}
}

func BenchmarkMatch(b *testing.B) {
	s := newSite("default", nil, []*route{{path: "/"}, {path: "/static/"}, {path: "*.php"}, {path: "/api/"}})
	tab := newHostTable([]*site{s})
	b.ReportAllocs()
	for b.Loop() {
		si, _ := tab.lookup("Example.com:8080")
		si.match("/static/css/site.css")
	}
}
