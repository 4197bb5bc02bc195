package cli

import (
	"context"
	"log/slog"

	"gantry/internal/config"
	"gantry/internal/server"
)

// extras are what runs beside the HTTP listeners: the admin listener and the
// telescope's sensors.
type extras struct {
	closers []func()
}

func (e *extras) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

func startExtras(ctx context.Context, srv *server.Server, cfg *config.Config, log *slog.Logger) (*extras, error) {
	return &extras{}, nil
}
