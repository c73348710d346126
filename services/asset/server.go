package asset

import (
	"log/slog"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/internal/mesh"
)

// Server implements assetv1.AssetServiceServer. RPCs not yet built answer UNIMPLEMENTED.
type Server struct {
	assetv1.UnimplementedAssetServiceServer
	log *slog.Logger
}

var _ assetv1.AssetServiceServer = (*Server)(nil)

// New builds the service from the process's dependencies.
func New(deps mesh.Deps) *Server {
	return &Server{log: deps.Logger.With("service", "asset")}
}
