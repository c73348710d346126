// Package asset is user files: uploads over REST and gRPC streams, downloads, and their
// metadata.
package asset

import (
	"context"

	"google.golang.org/grpc"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/internal/mesh"
)

// Service describes the asset service to the process that runs it.
func Service() mesh.Service {
	return mesh.Service{
		Name:  "asset",
		Needs: []string{"auth"},
		Start: func(_ context.Context, deps mesh.Deps) (*mesh.Instance, error) {
			srv := New(deps)
			return &mesh.Instance{Register: func(reg grpc.ServiceRegistrar) { assetv1.RegisterAssetServiceServer(reg, srv) }}, nil
		},
	}
}
