//go:build !linux

package telescope

import (
	"context"
	"errors"
	"log/slog"
)

// StartLive needs Linux's AF_PACKET; elsewhere analyze captures made by tcpdump.
func StartLive(ctx context.Context, iface string, opts Options, logger *slog.Logger) (*Live, error) {
	return nil, errors.New("telescope: live capture needs Linux (AF_PACKET); capture with tcpdump and use `gantry telescope analyze`")
}
