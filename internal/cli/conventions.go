package cli

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"gantry/internal/config"
	"gantry/internal/fastcgi"
	"gantry/internal/static"
	"gantry/internal/wsgi"
)

// note is a log line about what `gantry serve DIR` inferred, logged once the
// error log is open.
type note struct {
	msg  string
	args []any
}

// conventionRoutes adds the PHP and WSGI routes that `gantry serve DIR` infers.
func conventionRoutes(dir string, f serveFlags) ([]config.Route, []note, error) {
	var routes []config.Route
	if f.php != "" {
		php := &fastcgi.Options{Address: f.php}
		if f.php == "auto" {
			addr, cmd, err := fastcgi.DetectPHP()
			if err != nil {
				return nil, nil, fmt.Errorf("gantry serve: --php auto: %w", err)
			}
			php.Address, php.Command = addr, cmd
		}
		routes = append(routes, config.Route{Path: "*.php", Handler: php})
	}
	app := f.wsgi
	django := false
	if app == "" {
		app, django = wsgi.DetectDjango(dir)
	}
	if app == "" && fileExists(filepath.Join(dir, "wsgi.py")) {
		app = "wsgi:application"
	}
	if app == "" {
		if f.python != "" {
			return nil, nil, fmt.Errorf("gantry serve: --python is for a WSGI app: add --wsgi MODULE:CALLABLE")
		}
		return routes, nil, nil
	}
	var notes []note
	if django {
		python := f.python
		if python == "" {
			python = "python3"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Django's static files are served by gantry, as nginx would in front of
		// gunicorn, so that the admin is styled with no config.
		sf, err := wsgi.DjangoStatic(ctx, python, dir)
		if err != nil {
			notes = append(notes, note{"django: static files not served: cannot read the project's settings", []any{"err", err}})
		} else {
			sr, sn := djangoStaticRoutes(sf)
			routes, notes = append(routes, sr...), append(notes, sn...)
		}
	}
	routes = append(routes, config.Route{Path: "/", Handler: &wsgi.Options{App: app, Chdir: dir, Python: f.python}})
	return routes, notes, nil
}

// djangoStaticRoutes serves a Django project's static files at STATIC_URL:
// collectstatic's output when STATIC_ROOT exists, else the directories the
// staticfiles finders search, as runserver does, one tree in finder order.
func djangoStaticRoutes(sf wsgi.DjangoStaticFiles) ([]config.Route, []note) {
	if !strings.HasPrefix(sf.URL, "/") {
		return nil, []note{{"django: STATIC_URL is not a path on this site: gantry serves no static files", []any{"static_url", sf.URL}}}
	}
	url := sf.URL
	if !strings.HasSuffix(url, "/") {
		url += "/"
	}
	if sf.Root != "" && isDir(sf.Root) {
		return []config.Route{{Path: url, Handler: &static.Options{Root: sf.Root}}},
			[]note{{"django: " + url + " served from STATIC_ROOT (collectstatic output)", []any{"dir", sf.Root}}}
	}
	// Several finder directories under one prefix are one tree: the first that
	// has a file serves it. A STATICFILES_DIRS prefix gets a route of its own.
	var prefixes []string
	dirs := map[string][]string{}
	var notes []note
	for _, d := range sf.Finders {
		p := strings.Trim(d.Prefix, "/")
		if p != "" && (path.Clean(p) != p || strings.HasPrefix(p, "..") || strings.ContainsAny(p, "*\\\x00")) {
			notes = append(notes, note{"django: static files directory with an unusable prefix not served", []any{"prefix", d.Prefix, "dir", d.Dir}})
			continue
		}
		if !isDir(d.Dir) {
			continue
		}
		if _, seen := dirs[p]; !seen {
			prefixes = append(prefixes, p)
		}
		dirs[p] = append(dirs[p], d.Dir)
	}
	if len(prefixes) == 0 {
		return nil, append(notes, note{"django: no static files to serve: no STATIC_ROOT and no static directories found", []any{"static_url", url}})
	}
	why := "no STATIC_ROOT set"
	if sf.Root != "" {
		why = "STATIC_ROOT " + sf.Root + " does not exist yet (run collectstatic)"
	}
	var routes []config.Route
	for _, p := range prefixes {
		at := url
		if p != "" {
			at += p + "/"
		}
		ds := dirs[p]
		routes = append(routes, config.Route{Path: at, Handler: &static.Options{Root: ds[0], Also: ds[1:]}})
		notes = append(notes, note{"django: " + at + " served from the static files finders' directories, as runserver does: " + why,
			[]any{"dirs", strings.Join(ds, ", ")}})
	}
	return routes, notes
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
