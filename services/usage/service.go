// Package usage is metering and quotas: it records usage events idempotently and answers
// whether a user may spend more of a metered resource.
package usage

import (
	"context"

	"google.golang.org/grpc"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/service"
)

// Definition describes the usage service to the process that runs it.
func Definition() service.Definition {
	return service.Define(service.Spec[Config]{
		Name:  "usage",
		Needs: []string{"subscription"},
		// No tables yet: the process still creates the service's schema.
		Migrations: nil,
		APIs: []service.API{
			service.PublicAPI(usagev1.File_backplane_usage_v1_usage_proto.Services().ByName("UsageService"),
				usagev1.NewUsageServiceClient, usagev1.RegisterUsageServiceHandlerClient),
		},
		LoadConfig: LoadConfig,
		Start: func(ctx context.Context, cfg Config, deps service.Deps) (*service.Instance, error) {
			srv, err := New(ctx, cfg, deps)
			if err != nil {
				return nil, err
			}
			return &service.Instance{Register: func(reg grpc.ServiceRegistrar) { usagev1.RegisterUsageServiceServer(reg, srv) }}, nil
		},
	})
}
