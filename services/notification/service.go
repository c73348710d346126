// Package notification is email through SendGrid and an in-app inbox, delivered through a
// PostgreSQL outbox so that nothing is lost and nothing is sent twice.
//
// Files, as in every service (services/README.md): service.go describes the service to
// the process; config.go reads its settings; server.go builds the Server; one file per
// resource (send.go, inbox.go, stream.go, preferences.go, webhook.go); convert.go turns
// rows into protos; store.go is the storage boundary over the sqlc code in dbsqlc.
// README.md tells how a notification travels.
package notification

import (
	"context"
	"embed"
	"io/fs"

	"google.golang.org/grpc"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
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

// Definition describes the notification service to the process that runs it. It needs
// auth to look up the address of a user recipient when their email is delivered.
func Definition() service.Definition {
	return service.Define(service.Spec[Config]{
		Name:       "notification",
		Needs:      []string{"auth"},
		Migrations: migrations(),
		APIs: []service.API{
			service.PublicAPI(notificationv1.File_backplane_notification_v1_notification_proto.Services().ByName("NotificationService"),
				notificationv1.NewNotificationServiceClient, notificationv1.RegisterNotificationServiceHandlerClient),
		},
		LoadConfig: LoadConfig,
		Start: func(ctx context.Context, cfg Config, deps service.Deps) (*service.Instance, error) {
			srv, err := New(ctx, cfg, deps)
			if err != nil {
				return nil, err
			}
			return &service.Instance{
				Register: func(reg grpc.ServiceRegistrar) { notificationv1.RegisterNotificationServiceServer(reg, srv) },
				Stop:     srv.pool.start(), //nolint:contextcheck // the workers outlive Start's ctx; Stop ends them
			}, nil
		},
	})
}
