package asset

import (
	"context"
	"errors"
	"log/slog"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/internal/service"
)

// Server implements assetv1.AssetServiceServer. RPCs not yet built answer UNIMPLEMENTED.
type Server struct {
	assetv1.UnimplementedAssetServiceServer

	cfg Config
	log *slog.Logger
}

var _ assetv1.AssetServiceServer = (*Server)(nil)

// New builds the server from its configuration and the process's dependencies.
func New(_ context.Context, cfg Config, deps service.Deps) (*Server, error) {
	if deps.Logger == nil {
		return nil, errors.New("asset: Logger is required")
	}
	return &Server{cfg: cfg, log: deps.Logger.With("service", "asset")}, nil
}
