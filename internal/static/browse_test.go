package static

import (
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gantry/internal/fsroot"
)

// hostileNames are file names a listing must escape in HTML and in links.
var hostileNames = []string{
	"<script>alert(1)<",
	"<img src=x onerror=alert(1)>.html",
	`a"b'c.txt`,
	"100%.txt",
	"50%25.txt",
	"line\nbreak.txt",
	"caf\xe9.txt", // Latin-1, not UTF-8
	"sp ace#?&.txt",
	"javascript:alert(1)",
	"plain.txt",
}

// browseTree makes a directory with hostile names, dotfiles, links in and out of
// it, a FIFO and subdirectories, and returns it with a directory outside it.
func browseTree(t *testing.T) (root string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "www")
	outside := filepath.Join(base, "outside")
	writeFile(t, filepath.Join(outside, "secret.txt"), "SECRET_KEY=1")
	for _, n := range hostileNames {
		writeFile(t, filepath.Join(root, n), "content of "+n)
	}
	writeFile(t, filepath.Join(root, `back\slash.txt`), "refused by validPath, so never listed")
	writeFile(t, filepath.Join(root, ".env"), "SECRET_KEY=2")
	writeFile(t, filepath.Join(root, ".git", "config"), "[core]")
	writeFile(t, filepath.Join(root, "sub", "deeper.txt"), "deeper")
	writeFile(t, filepath.Join(root, "withindex", "index.html"), "the index")
	writeFile(t, filepath.Join(root, "withindex", "other.txt"), "other")
	for link, target := range map[string]string{
		"out.txt":    filepath.Join(outside, "secret.txt"),
		"outdir":     outside,
		"in.txt":     "plain.txt",
		"dangling":   "nowhere",
		"sub/up.txt": "../plain.txt",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func getJSON(t *testing.T, h http.Handler, target string) []listed {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	req.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s as JSON: %d %s %q", target, rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
	var out []listed
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("GET %s: %v: %q", target, err, rec.Body.String())
	}
	return out
}

func names(es []listed) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

// TestBrowseListsOnlyWhatCanBeFetched checks the listing against the requests it
// links to, through a real server: every link answers 200, and nothing the policy
// hides is named.
func TestBrowseListsOnlyWhatCanBeFetched(t *testing.T) {
	root := browseTree(t)
	tests := []struct {
		name  string
		opts  Options
		shown []string // besides the hostile names and sub/, withindex/
		never []string
	}{
		{"default", Options{}, []string{"in.txt"},
			[]string{".env", ".git", "out.txt", "outdir", "dangling", "fifo", `back\slash.txt`}},
		{"allow_dotfiles", Options{AllowDotfiles: true}, []string{"in.txt", ".env", ".git"},
			[]string{"out.txt", "outdir", "dangling", "fifo"}},
		{"symlinks follow", Options{Symlinks: fsroot.Follow}, []string{"in.txt", "out.txt", "outdir"},
			[]string{".env", ".git", "dangling", "fifo"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Root, opts.Browse = root, true
			h := newHandler(t, opts)
			addr := serve(t, h)
			got := getJSON(t, h, "/")
			want := append(slices.Clone(hostileNames), "sub", "withindex")
			want = append(want, tc.shown...)
			for i, n := range want {
				// JSON strings are UTF-8: the exact name is in the escaped url.
				want[i] = strings.ToValidUTF8(n, "\uFFFD")
			}
			slices.Sort(want)
			gotNames := names(got)
			slices.Sort(gotNames)
			if !slices.Equal(gotNames, want) {
				t.Errorf("listed %q\nwant %q", gotNames, want)
			}
			for _, e := range got {
				if slices.Contains(tc.never, e.Name) {
					t.Errorf("listed %q, which must stay hidden", e.Name)
				}
				resp, body := rawGet(t, addr, "/"+strings.TrimPrefix(e.URL, "./"))
				if resp.StatusCode != 200 {
					t.Errorf("%q listed, but its link %s answers %d", e.Name, e.URL, resp.StatusCode)
				}
				exact, err := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(e.URL, "./"), "/"))
				if err != nil || strings.ToValidUTF8(exact, "\uFFFD") != e.Name {
					t.Errorf("%q: url %q does not name it (%v)", e.Name, e.URL, err)
				}
				if !e.IsDir && body != "content of "+exact && e.Name != "in.txt" && e.Name != "out.txt" && !strings.HasPrefix(e.Name, ".") {
					t.Errorf("%q: its link %s gave %q", e.Name, e.URL, body)
				}
			}
			for _, n := range tc.never {
				resp, _ := rawGet(t, addr, "/"+url.PathEscape(n))
				if resp.StatusCode == 200 {
					t.Errorf("%q is hidden from the listing but served", n)
				}
			}
		})
	}
}

var linkRE = regexp.MustCompile(`<a href="([^"]*)">([^<]*)</a>`)

func TestBrowseHTMLEscapes(t *testing.T) {
	root := browseTree(t)
	h := newHandler(t, Options{Root: root, Browse: true})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, bad := range []string{"<script", "<img", "onerror=alert(1)>", `href="javascript:`, "\xe9"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q:\n%s", bad, body)
		}
	}
	if !strings.Contains(body, "prefers-color-scheme: dark") {
		t.Error("no dark mode")
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	links := map[string]string{} // name → href, both unescaped
	for _, m := range linkRE.FindAllStringSubmatch(body, -1) {
		href, text := html.UnescapeString(m[1]), html.UnescapeString(m[2])
		if strings.HasPrefix(href, "?") || href == "../" {
			continue
		}
		p, err := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(href, "./"), "/"))
		if err != nil || !strings.HasPrefix(href, "./") {
			t.Errorf("link %q for %q: not a relative escaped path (%v)", href, text, err)
			continue
		}
		links[p] = text
	}
	for _, n := range hostileNames {
		text, ok := links[n]
		if !ok {
			t.Errorf("no link whose href names %q; links: %q", n, links)
			continue
		}
		if want := strings.ToValidUTF8(n, "\uFFFD"); text != want {
			t.Errorf("link text for %q is %q, want %q", n, text, want)
		}
	}
	if links["sub"] != "sub/" {
		t.Errorf("directory sub shown as %q, want sub/", links["sub"])
	}
	if strings.Contains(body, `href="../"`) {
		t.Error("the route's root has a parent link")
	}
}

func TestBrowseSubdirectoryAndIndex(t *testing.T) {
	root := browseTree(t)
	h := newHandler(t, Options{Root: root, Route: "/files/", Browse: true})
	tests := []struct {
		name, target string
		status       int
		contains     string
	}{
		{"index file wins", "/files/withindex/", 200, "the index"},
		{"subdirectory has a parent link", "/files/sub/", 200, `<a href="../">../</a>`},
		{"link inside the root is listed", "/files/sub/", 200, `href="./up.txt"`},
		{"without slash redirected", "/files/sub", 301, ""},
		{"dotfile directory not listed", "/files/.git/", 404, ""},
		{"link to a directory outside", "/files/outdir/", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", tc.target, nil))
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.contains) {
				t.Errorf("GET %s: %d %q; want %d containing %q", tc.target, rec.Code, rec.Body.String(), tc.status, tc.contains)
			}
			if strings.Contains(rec.Body.String(), "SECRET_KEY") {
				t.Errorf("GET %s leaked a secret", tc.target)
			}
		})
	}
	// Off by default: a directory without an index is 403, as in nginx.
	off := newHandler(t, Options{Root: root})
	rec := httptest.NewRecorder()
	off.ServeHTTP(rec, httptest.NewRequest("GET", "/sub/", nil))
	if rec.Code != 403 || strings.Contains(rec.Body.String(), "deeper") {
		t.Errorf("browse off: %d %q, want 403", rec.Code, rec.Body.String())
	}
	// HEAD: the headers, no body.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("HEAD", "/files/sub/", nil))
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD: %d, body %d bytes, Content-Length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}
}

func TestBrowseSort(t *testing.T) {
	root := t.TempDir()
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for i, f := range []struct {
		name string
		size int
		age  int // hours before base
	}{{"b.txt", 30, 1}, {"a.txt", 10, 2}, {"c.txt", 20, 0}} {
		p := filepath.Join(root, f.name)
		writeFile(t, p, strings.Repeat("x", f.size))
		mt := base.Add(-time.Duration(f.age) * time.Hour)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err, i)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "zdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, Options{Root: root, Browse: true})
	tests := []struct {
		name, query string
		want        []string
	}{
		{"default by name", "", []string{"zdir", "a.txt", "b.txt", "c.txt"}},
		{"name descending", "?sort=name&order=desc", []string{"zdir", "c.txt", "b.txt", "a.txt"}},
		{"size", "?sort=size", []string{"zdir", "a.txt", "c.txt", "b.txt"}},
		{"size descending", "?sort=size&order=desc", []string{"zdir", "b.txt", "c.txt", "a.txt"}},
		{"date", "?sort=mtime&order=asc", []string{"zdir", "a.txt", "b.txt", "c.txt"}},
		{"date descending", "?sort=mtime&order=desc", []string{"zdir", "c.txt", "b.txt", "a.txt"}},
		{"unknown key is by name", "?sort=%3Cx%3E&order=sideways", []string{"zdir", "a.txt", "b.txt", "c.txt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(getJSON(t, h, "/"+tc.query)); !slices.Equal(got, tc.want) {
				t.Errorf("JSON order %q, want %q", got, tc.want)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/"+tc.query, nil))
			var got []string
			for _, m := range linkRE.FindAllStringSubmatch(rec.Body.String(), -1) {
				if strings.HasPrefix(m[1], "./") {
					got = append(got, strings.TrimSuffix(m[2], "/"))
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("HTML order %q, want %q", got, tc.want)
			}
		})
	}
	// The JSON carries what a client sorts or shows by itself.
	es := getJSON(t, h, "/?sort=name")
	if e := es[1]; e.Name != "a.txt" || e.Size != 10 || !e.MTime.Equal(base.Add(-2*time.Hour)) || e.IsDir {
		t.Errorf("a.txt listed as %+v", e)
	}
	if !es[0].IsDir || es[0].URL != "./zdir/" {
		t.Errorf("zdir listed as %+v", es[0])
	}
	// The column sorted by links to the other order.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/?sort=size", nil))
	if !strings.Contains(rec.Body.String(), `href="?sort=size&amp;order=desc"`) {
		t.Errorf("size column does not link to descending order:\n%s", rec.Body.String())
	}
}

func TestBrowseBounded(t *testing.T) {
	root := t.TempDir()
	for i := range 12 {
		writeFile(t, filepath.Join(root, strings.Repeat("f", i+1)), "x")
	}
	tests := []struct {
		name      string
		limit     int
		listed    int
		truncated bool
	}{
		{"over the limit", 5, 5, true},
		{"exactly the limit", 12, 12, false},
		{"under the limit", 20, 12, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler(t, Options{Root: root, Browse: true, BrowseLimit: tc.limit})
			if n := len(getJSON(t, h, "/")); n != tc.listed {
				t.Errorf("listed %d entries, want %d", n, tc.listed)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if said := strings.Contains(rec.Body.String(), "more than"); said != tc.truncated {
				t.Errorf("page says it is truncated: %v, want %v", said, tc.truncated)
			}
		})
	}
}

func TestWantsJSON(t *testing.T) {
	tests := []struct {
		accept string
		want   bool
	}{
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", false},
		{"text/html;q=0.5, application/json", true},
		{"application/json;q=0.5, text/html", false},
		{"application/json;q=0", false},
		{"*/*", false},
		{"", false},
		{"garbage;;;=", false},
	}
	for _, tc := range tests {
		t.Run(tc.accept, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.accept != "" {
				r.Header.Set("Accept", tc.accept)
			}
			if got := wantsJSON(r); got != tc.want {
				t.Errorf("wantsJSON(%q) = %v, want %v", tc.accept, got, tc.want)
			}
		})
	}
}
