// Package subscription is billing: plans, Stripe checkout and customer portal sessions, and
// the Stripe webhooks that keep each user's subscription and entitlements current.
package subscription

import (
	"context"

	"google.golang.org/grpc"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/service"
)

// Definition describes the subscription service to the process that runs it.
func Definition() service.Definition {
	return service.Define(service.Spec[Config]{
		Name:  "subscription",
		Needs: []string{"auth", "notification"},
		// No tables yet: the process still creates the service's schema.
		Migrations: nil,
		APIs: []service.API{
			service.PublicAPI(subscriptionv1.File_backplane_subscription_v1_subscription_proto.Services().ByName("SubscriptionService"),
				subscriptionv1.NewSubscriptionServiceClient, subscriptionv1.RegisterSubscriptionServiceHandlerClient),
		},
		LoadConfig: LoadConfig,
		Start: func(ctx context.Context, cfg Config, deps service.Deps) (*service.Instance, error) {
			srv, err := New(ctx, cfg, deps)
			if err != nil {
				return nil, err
			}
			return &service.Instance{Register: func(reg grpc.ServiceRegistrar) { subscriptionv1.RegisterSubscriptionServiceServer(reg, srv) }}, nil
		},
	})
}
