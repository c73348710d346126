package subscription

import (
	"context"
	"errors"
	"log/slog"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/service"
)

// Server implements subscriptionv1.SubscriptionServiceServer. RPCs not yet built answer UNIMPLEMENTED.
type Server struct {
	subscriptionv1.UnimplementedSubscriptionServiceServer

	cfg Config
	log *slog.Logger
}

var _ subscriptionv1.SubscriptionServiceServer = (*Server)(nil)

// New builds the server from its configuration and the process's dependencies.
func New(_ context.Context, cfg Config, deps service.Deps) (*Server, error) {
	if deps.Logger == nil {
		return nil, errors.New("subscription: Logger is required")
	}
	return &Server{cfg: cfg, log: deps.Logger.With("service", "subscription")}, nil
}
