package static

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gantry/internal/fsroot"
)

// listed is one entry of a directory listing.
type listed struct {
	Name  string    `json:"name"`
	URL   string    `json:"url"` // relative to the listing, escaped: names need not be UTF-8
	Size  int64     `json:"size"`
	MTime time.Time `json:"mtime"`
	IsDir bool      `json:"is_dir"`
}

// listing is what the HTML page shows.
type listing struct {
	Path      string
	Parent    bool
	Entries   []listed
	Truncated bool
	Limit     int
	Sort      map[string]string // column → the link that sorts by it
}

// serveListing answers a request for the directory rel, which has no index file,
// with the list of its entries a request could fetch.
func (h *Handler) serveListing(w http.ResponseWriter, r *http.Request, st *rootState, rel string) {
	name := fileName(rel)
	d, err := st.root.Open(name)
	if err != nil {
		h.fail(w, r, classify(err))
		return
	}
	entries, truncated, err := h.readListing(st.root, name, d)
	d.Close()
	if err != nil {
		h.fail(w, r, &lookupError{http.StatusInternalServerError, err})
		return
	}
	key, desc := sortKey(r.URL.Query())
	sortListing(entries, key, desc)

	var body bytes.Buffer
	hdr := w.Header()
	if wantsJSON(r) {
		hdr.Set("Content-Type", "application/json")
		if entries == nil {
			entries = []listed{}
		}
		json.NewEncoder(&body).Encode(entries)
	} else {
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		page := listing{
			Path:      strings.ToValidUTF8(r.URL.Path, "\uFFFD"),
			Parent:    rel != "/",
			Entries:   entries,
			Truncated: truncated,
			Limit:     h.opts.BrowseLimit,
			Sort:      sortLinks(key, desc),
		}
		if err := listingPage.Execute(&body, page); err != nil {
			h.fail(w, r, &lookupError{http.StatusInternalServerError, err})
			return
		}
	}
	hdr.Set("Vary", "Accept")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Length", strconv.Itoa(body.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body.Bytes())
	}
}

// readListing reads up to BrowseLimit entries of the directory d (name in root)
// and keeps those a request could fetch; truncated tells there were more.
func (h *Handler) readListing(root *fsroot.Root, name string, d *os.File) (out []listed, truncated bool, err error) {
	read := 0
	for {
		batch, err := d.ReadDir(256)
		for _, de := range batch {
			if read == h.opts.BrowseLimit {
				return out, true, nil
			}
			read++
			if e, ok := h.listable(root, name, de.Name()); ok {
				out = append(out, e)
			}
		}
		if errors.Is(err, io.EOF) || err == nil && len(batch) == 0 {
			return out, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("read directory %s: %w", name, err)
		}
	}
}

// listable returns the entry for file n of directory dir when a request could
// fetch it: not a dotfile (unless allowed), nothing validPath refuses, and
// reached through root, so by the link policy that serves it; only regular files
// and directories.
func (h *Handler) listable(root *fsroot.Root, dir, n string) (listed, bool) {
	if n[0] == '.' && !h.opts.AllowDotfiles || strings.ContainsAny(n, "/\\\x00") {
		return listed{}, false
	}
	full := n
	if dir != "." {
		full = dir + "/" + n
	}
	fi, err := root.Stat(full)
	if err != nil || !fi.Mode().IsRegular() && !fi.IsDir() {
		return listed{}, false
	}
	e := listed{Name: n, URL: "./" + url.PathEscape(n), MTime: fi.ModTime().UTC().Truncate(time.Second), IsDir: fi.IsDir()}
	if e.IsDir {
		e.URL += "/"
	} else {
		e.Size = fi.Size()
	}
	return e, true
}

// sortKey reads ?sort=name|size|mtime and ?order=asc|desc; anything else is the
// default, by name ascending.
func sortKey(q url.Values) (key string, desc bool) {
	key = q.Get("sort")
	switch key {
	case "name", "size", "mtime":
	default:
		key = "name"
	}
	return key, q.Get("order") == "desc"
}

// sortListing orders directories first, then by key, then by name.
func sortListing(es []listed, key string, desc bool) {
	slices.SortStableFunc(es, func(a, b listed) int {
		if a.IsDir != b.IsDir {
			if a.IsDir {
				return -1
			}
			return 1
		}
		c := 0
		switch key {
		case "size":
			c = cmp.Compare(a.Size, b.Size)
		case "mtime":
			c = a.MTime.Compare(b.MTime)
		}
		if c == 0 {
			c = strings.Compare(a.Name, b.Name)
		}
		if desc {
			c = -c
		}
		return c
	})
}

// sortLinks gives each column the query that sorts by it: ascending, or the
// other way round for the column already sorted by.
func sortLinks(key string, desc bool) map[string]string {
	m := map[string]string{}
	for _, k := range []string{"name", "size", "mtime"} {
		order := "asc"
		if k == key && !desc {
			order = "desc"
		}
		m[k] = "?sort=" + k + "&order=" + order
	}
	return m
}

// wantsJSON reports whether r's Accept prefers application/json to HTML.
func wantsJSON(r *http.Request) bool {
	accept, _ := headerValue(r.Header, "Accept")
	var qJSON, qHTML float64 = -1, -1
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		switch mt {
		case "application/json":
			qJSON = max(qJSON, q)
		case "text/html":
			qHTML = max(qHTML, q)
		}
	}
	return qJSON > 0 && qJSON > qHTML
}

func (e listed) SizeText() string {
	if e.IsDir {
		return "-"
	}
	const unit = 1024
	if e.Size < unit {
		return strconv.FormatInt(e.Size, 10) + " B"
	}
	f, u := float64(e.Size)/unit, "KMGTPE"
	i := 0
	for f >= unit && i < len(u)-1 {
		f /= unit
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + u[i:i+1] + "iB"
}

// DisplayName is the name as the page shows it: invalid UTF-8 replaced, a
// directory with its slash.
func (e listed) DisplayName() string {
	n := strings.ToValidUTF8(e.Name, "\uFFFD")
	if e.IsDir {
		n += "/"
	}
	return n
}

// listingPage needs no script: sorting is by links, dark mode by media query.
var listingPage = template.Must(template.New("listing").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Index of {{.Path}}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#1a1a1a;background:#fff}
a{color:#0b57d0;text-decoration:none}a:hover{text-decoration:underline}
table{border-collapse:collapse;width:100%}
th,td{padding:.25em .75em;text-align:left;white-space:nowrap}
td:first-child{white-space:normal;word-break:break-all}
th{border-bottom:1px solid #ccc}
.n{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:hover{background:#f3f3f3}
@media (prefers-color-scheme: dark){body{color:#e3e3e3;background:#161616}a{color:#8ab4f8}th{border-color:#444}tbody tr:hover{background:#222}}
</style>
</head>
<body>
<h1>Index of {{.Path}}</h1>
{{if .Truncated}}<p>This directory has more than {{.Limit}} entries: only those among the first {{.Limit}} read are listed.</p>
{{end}}<table>
<thead><tr><th><a href="{{index .Sort "name"}}">Name</a></th><th class="n"><a href="{{index .Sort "size"}}">Size</a></th><th><a href="{{index .Sort "mtime"}}">Modified (UTC)</a></th></tr></thead>
<tbody>
{{if .Parent}}<tr><td><a href="../">../</a></td><td class="n"></td><td></td></tr>
{{end}}{{range .Entries}}<tr><td><a href="{{.URL}}">{{.DisplayName}}</a></td><td class="n">{{.SizeText}}</td><td><time datetime="{{.MTime.Format "2006-01-02T15:04:05Z07:00"}}">{{.MTime.Format "2006-01-02 15:04"}}</time></td></tr>
{{end}}</tbody>
</table>
</body>
</html>
`))
