// Package notification is email through SendGrid and an in-app inbox, delivered through a
// PostgreSQL outbox so that nothing is lost and nothing is sent twice.
package notification

import (
	"context"

	"google.golang.org/grpc"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/mesh"
)

// Service describes the notification service to the process that runs it.
func Service() mesh.Service {
	return mesh.Service{
		Name:  "notification",
		Needs: []string{},
		Register: func(_ context.Context, deps mesh.Deps, reg grpc.ServiceRegistrar) (func(context.Context) error, error) {
			notificationv1.RegisterNotificationServiceServer(reg, New(deps))
			return nil, nil
		},
	}
}
