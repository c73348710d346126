package auth

import (
	"log/slog"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/mesh"
)

// Server implements authv1.AuthServiceServer. RPCs not yet built answer UNIMPLEMENTED.
type Server struct {
	authv1.UnimplementedAuthServiceServer
	log *slog.Logger
}

var _ authv1.AuthServiceServer = (*Server)(nil)

// New builds the service from the process's dependencies.
func New(deps mesh.Deps) *Server {
	return &Server{log: deps.Logger.With("service", "auth")}
}
