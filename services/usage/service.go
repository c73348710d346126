// Package usage is metering and quotas: it records usage events idempotently, keeps
// each user's total per meter and billing period, answers whether a user may spend more
// of a metered resource, warns users nearing their limits, and reports metered totals
// to Stripe for usage-based billing.
//
// How it holds together:
//
//   - Meters come from the catalogue (internal/plans); limits and billing periods from
//     the subscription service's entitlements, cached per user for seconds and dropped
//     when the subscription service announces a change (entitlements.go). Free-plan
//     users count in calendar months in UTC; subscribers in their subscription's periods
//     (periods.go). A new period is a new totals row, so it starts at zero with no job.
//   - Events live in a table partitioned by month; the idempotency key of each is
//     claimed in a table of its own. A batch is one statement (queries/events.sql,
//     EventsRecord) that claims the keys, inserts the events and adds them to their
//     totals, in one transaction and one round trip (record.go).
//   - ConsumeQuota is one statement on the period's totals row, which decides against
//     the latest total and counts in the same write, whichever replica runs it
//     (quotas.go).
//   - Alerts at 80 % and 100 % of a limit are rows raised by those statements, once per
//     threshold and period, and sent through the notification service by River jobs
//     (alerts.go). Partition upkeep and key expiry are periodic River jobs run by one
//     elected leader (jobs.go); so is the Stripe reporter (billing.go).
//
// The edge counts every authenticated API call on the api_calls meter and reports them
// in batches through IngestUsage (gateway/usage.go).
//
// Files, as in every service (services/README.md): service.go describes the service;
// config.go reads its settings; server.go builds the Server; one file per resource
// (events.go, quotas.go, summary.go, meters.go); convert.go turns rows into protos;
// store.go is the storage boundary over the sqlc code in dbsqlc.
package usage

import (
	"context"
	"embed"
	"errors"
	"io/fs"

	"google.golang.org/grpc"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
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

// Definition describes the usage service to the process that runs it. It asks the
// subscription service for each user's plan and period, sends usage alerts through the
// notification service, and runs its background work on River.
func Definition() service.Definition {
	return service.Define(service.Spec[Config]{
		Name:       "usage",
		Needs:      []string{"subscription", "notification"},
		Migrations: migrations(),
		Jobs:       true,
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
			if err := srv.jobs.Start(ctx); err != nil {
				return nil, errors.Join(err, srv.Stop(ctx))
			}
			return &service.Instance{
				Register: func(reg grpc.ServiceRegistrar) { usagev1.RegisterUsageServiceServer(reg, srv) },
				Stop: func(ctx context.Context) error {
					return errors.Join(srv.jobs.Stop(ctx), srv.Stop(ctx))
				},
				Jobs: srv.jobs,
			}, nil
		},
	})
}
