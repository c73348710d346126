package subscription

import (
	"log/slog"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/mesh"
)

// Server implements subscriptionv1.SubscriptionServiceServer. RPCs not yet built answer UNIMPLEMENTED.
type Server struct {
	subscriptionv1.UnimplementedSubscriptionServiceServer
	log *slog.Logger
}

var _ subscriptionv1.SubscriptionServiceServer = (*Server)(nil)

// New builds the service from the process's dependencies.
func New(deps mesh.Deps) *Server {
	return &Server{log: deps.Logger.With("service", "subscription")}
}
