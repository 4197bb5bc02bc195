package cli

import (
	"fmt"

	"gantry/internal/config"
)

// conventionRoutes adds the PHP and WSGI routes that `gantry serve DIR` infers.
func conventionRoutes(dir string, f serveFlags) ([]config.Route, error) {
	var routes []config.Route
	if f.php != "" {
		r := config.Route{Path: "*.php"}
		if f.php == "auto" {
			return nil, fmt.Errorf("gantry serve: --php auto is not available in this build yet; give the php-fpm address, like --php unix:/run/php/php8.2-fpm.sock")
		}
		r.FastCGI = f.php
		routes = append(routes, r)
	}
	if f.wsgi != "" {
		return nil, fmt.Errorf("gantry serve: --wsgi is not available in this build yet")
	}
	return routes, nil
}
