// Package notification is email through SendGrid and an in-app inbox, delivered through a
// PostgreSQL outbox so that nothing is lost and nothing is sent twice.
package notification

import (
	"context"
	"embed"
	"io/fs"

	"google.golang.org/grpc"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/mesh"
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

// Service describes the notification service to the process that runs it. It needs auth
// to look up the address of a user recipient when their email is delivered.
func Service() mesh.Service {
	return mesh.Service{
		Name:       "notification",
		Needs:      []string{"auth"},
		Migrations: migrations(),
		Start: func(_ context.Context, deps mesh.Deps) (*mesh.Instance, error) {
			srv, err := New(deps)
			if err != nil {
				return nil, err
			}
			return &mesh.Instance{
				Register: func(reg grpc.ServiceRegistrar) { notificationv1.RegisterNotificationServiceServer(reg, srv) },
				Stop:     srv.pool.start(),
			}, nil
		},
	}
}
