package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"gantry/internal/config"
	"gantry/internal/proxy"
	"gantry/internal/static"
)

// newHandler builds the http.Handler for one route from its config.
func newHandler(ctx context.Context, cs *config.Site, cr *config.Route, log *slog.Logger, version string) (http.Handler, error) {
	software := "gantry/" + version
	_ = software
	switch cr.Kind() {
	case config.KindStatic:
		return static.New(static.Options{Root: cr.Static, Route: cr.Path, Index: cr.Index, AllowDotfiles: cr.AllowDotfiles}, log)
	case config.KindProxy:
		return proxy.New(proxy.Options{Upstream: cr.Proxy, Route: cr.Path, Timeout: cr.Timeout.D()}, log)
	case config.KindRedirect:
		return redirect(cr.Redirect, cr.Status), nil
	}
	return nil, fmt.Errorf("%s routes are not available in this build", cr.Kind())
}
