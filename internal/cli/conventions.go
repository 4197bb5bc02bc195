package cli

import (
	"fmt"

	"gantry/internal/config"
	"gantry/internal/fastcgi"
)

// conventionRoutes adds the PHP and WSGI routes that `gantry serve DIR` infers.
func conventionRoutes(dir string, f serveFlags) ([]config.Route, error) {
	var routes []config.Route
	if f.php != "" {
		r := config.Route{Path: "*.php"}
		if f.php == "auto" {
			addr, cmd, err := fastcgi.DetectPHP()
			if err != nil {
				return nil, fmt.Errorf("gantry serve: --php auto: %w", err)
			}
			r.FastCGI, r.FastCGICmd = addr, cmd
		} else {
			r.FastCGI = f.php
		}
		routes = append(routes, r)
	}
	if f.wsgi != "" {
		return nil, fmt.Errorf("gantry serve: --wsgi is not available in this build yet")
	}
	return routes, nil
}
