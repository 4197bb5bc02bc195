package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gantry/internal/config"
	"gantry/internal/fastcgi"
	"gantry/internal/static"
	"gantry/internal/wsgi"
)

// conventionRoutes adds the PHP and WSGI routes that `gantry serve DIR` infers.
func conventionRoutes(dir string, f serveFlags) ([]config.Route, error) {
	var routes []config.Route
	if f.php != "" {
		php := &fastcgi.Options{Address: f.php}
		if f.php == "auto" {
			addr, cmd, err := fastcgi.DetectPHP()
			if err != nil {
				return nil, fmt.Errorf("gantry serve: --php auto: %w", err)
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
			return nil, fmt.Errorf("gantry serve: --python is for a WSGI app: add --wsgi MODULE:CALLABLE")
		}
		return routes, nil
	}
	if django {
		python := f.python
		if python == "" {
			python = "python3"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Django's collected static files are served by gantry, as nginx would in
		// front of gunicorn; without collectstatic there is nothing to serve.
		if url, root, err := wsgi.DjangoStatic(ctx, python, dir); err == nil && strings.HasPrefix(url, "/") && isDir(root) {
			if !strings.HasSuffix(url, "/") {
				url += "/"
			}
			routes = append(routes, config.Route{Path: url, Handler: &static.Options{Root: root}})
		}
	}
	routes = append(routes, config.Route{Path: "/", Handler: &wsgi.Options{App: app, Chdir: dir, Python: f.python}})
	return routes, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
