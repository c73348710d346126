// Package subscription is billing: plans, Stripe checkout and customer portal sessions, and
// the Stripe webhooks that keep each user's subscription and entitlements current.
package subscription

import (
	"context"

	"google.golang.org/grpc"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/mesh"
)

// Service describes the subscription service to the process that runs it.
func Service() mesh.Service {
	return mesh.Service{
		Name:  "subscription",
		Needs: []string{"auth", "notification"},
		Start: func(_ context.Context, deps mesh.Deps) (*mesh.Instance, error) {
			srv := New(deps)
			return &mesh.Instance{Register: func(reg grpc.ServiceRegistrar) { subscriptionv1.RegisterSubscriptionServiceServer(reg, srv) }}, nil
		},
	}
}
