package usage

import (
	"context"
	"errors"
	"log/slog"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/service"
)

// Server implements usagev1.UsageServiceServer. RPCs not yet built answer UNIMPLEMENTED.
type Server struct {
	usagev1.UnimplementedUsageServiceServer

	cfg Config
	log *slog.Logger
}

var _ usagev1.UsageServiceServer = (*Server)(nil)

// New builds the server from its configuration and the process's dependencies.
func New(_ context.Context, cfg Config, deps service.Deps) (*Server, error) {
	if deps.Logger == nil {
		return nil, errors.New("usage: Logger is required")
	}
	return &Server{cfg: cfg, log: deps.Logger.With("service", "usage")}, nil
}
