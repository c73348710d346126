package notification

import (
	"log/slog"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/mesh"
)

// Server implements notificationv1.NotificationServiceServer. RPCs not yet built answer UNIMPLEMENTED.
type Server struct {
	notificationv1.UnimplementedNotificationServiceServer
	log *slog.Logger
}

var _ notificationv1.NotificationServiceServer = (*Server)(nil)

// New builds the service from the process's dependencies.
func New(deps mesh.Deps) *Server {
	return &Server{log: deps.Logger.With("service", "notification")}
}
