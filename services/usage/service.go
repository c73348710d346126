// Package usage is metering and quotas: it records usage events idempotently and answers
// whether a user may spend more of a metered resource.
package usage

import (
	"context"

	"google.golang.org/grpc"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/mesh"
)

// Service describes the usage service to the process that runs it.
func Service() mesh.Service {
	return mesh.Service{
		Name:  "usage",
		Needs: []string{"subscription"},
		Register: func(_ context.Context, deps mesh.Deps, reg grpc.ServiceRegistrar) (func(context.Context) error, error) {
			usagev1.RegisterUsageServiceServer(reg, New(deps))
			return nil, nil
		},
	}
}
