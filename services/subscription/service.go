// Package subscription is billing: the plan catalogue, each user's Stripe subscription,
// checkout and customer-portal sessions, invoices, and the entitlements every other
// service enforces.
//
// How it holds together:
//
//   - The catalogue (internal/plans) is the operator's file; Stripe holds the prices it
//     names by lookup key, which `backplane stripe sync` creates.
//   - Stripe is the record for money. The service keeps a copy of each subscription,
//     written only from objects it read from Stripe itself, never from a webhook's
//     payload, and only when the read is newer than the one the copy came from (the
//     stripe_reads sequence orders reads across replicas). Entitlements are answered
//     from that copy, so the rest of the mesh never waits on Stripe.
//   - Every change to a user's copy is published on Redis (plans.ChangesChannel) once
//     committed, so caches of entitlements at the edge drop the user within a second.
//
// Files, as in every service (services/README.md): service.go describes the service to
// the process; config.go reads its settings; server.go builds the Server; one file per
// resource (plans.go, subscriptions.go, entitlements.go, customers.go, checkout.go for
// checkout and the billing portal, manage.go for cancel, resume and change of plan,
// invoices.go, admin.go, webhooks.go); convert.go turns rows and Stripe objects into
// protos; store.go is the storage boundary over the sqlc code in dbsqlc. stripe.go is
// the edge to Stripe (retries, idempotency keys, errors), prices.go the cache of
// Stripe's prices, and sync.go what `backplane stripe sync` runs.
package subscription

import (
	"context"
	"embed"
	"io/fs"

	"google.golang.org/grpc"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/service"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations holds the NNNN_name.up.sql / .down.sql files at its root, as the migrator
// expects.
func migrations() fs.FS {
	// fs.Sub fails only for an invalid path name, and this one is a valid constant.
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}

// Definition describes the subscription service to the process that runs it.
func Definition() service.Definition {
	return service.Define(service.Spec[Config]{
		Name:       "subscription",
		Needs:      []string{"auth", "notification"},
		Migrations: migrations(),
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
