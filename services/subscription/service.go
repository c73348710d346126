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
		Register: func(_ context.Context, deps mesh.Deps, reg grpc.ServiceRegistrar) (func(context.Context) error, error) {
			subscriptionv1.RegisterSubscriptionServiceServer(reg, New(deps))
			return nil, nil
		},
	}
}
