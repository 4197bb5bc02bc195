package cli

import (
	"fmt"

	"gantry/internal/config"
)

// conventionRoutes adds the PHP and WSGI routes that `gantry serve DIR` infers.
func conventionRoutes(dir string, f serveFlags) ([]config.Route, error) {
	var routes []config.Route
	if f.php != "" {
		return nil, fmt.Errorf("gantry serve: --php is not available in this build yet")
	}
	if f.wsgi != "" {
		return nil, fmt.Errorf("gantry serve: --wsgi is not available in this build yet")
	}
	return routes, nil
}
