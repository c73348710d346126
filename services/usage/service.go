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
		Start: func(_ context.Context, deps mesh.Deps) (*mesh.Instance, error) {
			srv := New(deps)
			return &mesh.Instance{Register: func(reg grpc.ServiceRegistrar) { usagev1.RegisterUsageServiceServer(reg, srv) }}, nil
		},
	}
}
