package usage

import (
	"log/slog"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/mesh"
)

// Server implements usagev1.UsageServiceServer. RPCs not yet built answer UNIMPLEMENTED.
type Server struct {
	usagev1.UnimplementedUsageServiceServer
	log *slog.Logger
}

var _ usagev1.UsageServiceServer = (*Server)(nil)

// New builds the service from the process's dependencies.
func New(deps mesh.Deps) *Server {
	return &Server{log: deps.Logger.With("service", "usage")}
}
