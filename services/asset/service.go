// Package asset is user files: uploads over REST and gRPC streams, downloads, and their
// metadata.
package asset

import (
	"context"

	"google.golang.org/grpc"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/internal/service"
)

// Definition describes the asset service to the process that runs it.
func Definition() service.Definition {
	return service.Define(service.Spec[Config]{
		Name:  "asset",
		Needs: []string{"auth"},
		// No tables yet: the process still creates the service's schema.
		Migrations: nil,
		APIs: []service.API{
			service.PublicAPI(assetv1.File_backplane_asset_v1_asset_proto.Services().ByName("AssetService"),
				assetv1.NewAssetServiceClient, assetv1.RegisterAssetServiceHandlerClient),
		},
		LoadConfig: LoadConfig,
		Start: func(ctx context.Context, cfg Config, deps service.Deps) (*service.Instance, error) {
			srv, err := New(ctx, cfg, deps)
			if err != nil {
				return nil, err
			}
			return &service.Instance{Register: func(reg grpc.ServiceRegistrar) { assetv1.RegisterAssetServiceServer(reg, srv) }}, nil
		},
	})
}
