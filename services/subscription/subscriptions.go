package subscription

import (
	"context"
	"errors"

	"github.com/google/uuid"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/services/subscription/dbsqlc"
)

// GetSubscription returns the caller's subscription: the newest that has not ended,
// else the newest. A caller who never subscribed answers NOT_FOUND.
func (s *Server) GetSubscription(ctx context.Context, _ *subscriptionv1.GetSubscriptionRequest) (*subscriptionv1.GetSubscriptionResponse, error) {
	userID, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	row, err := s.current(ctx, userID)
	if err != nil {
		return nil, err
	}
	resp := &subscriptionv1.GetSubscriptionResponse{Subscription: subscriptionToProto(row)}
	if p, ok := s.catalog.Plan(row.PlanID); ok {
		var pr price
		if p.Price != nil {
			prices, _ := s.prices.get(ctx)
			pr = prices[p.Price.LookupKey]
		}
		resp.Plan = planToProto(p, pr)
	}
	return resp, nil
}

// current returns a user's current subscription, NOT_FOUND when they never subscribed.
func (s *Server) current(ctx context.Context, userID uuid.UUID) (dbsqlc.Subscription, error) {
	row, err := s.store.currentSubscription(ctx, userID)
	switch {
	case errors.Is(err, database.ErrNotFound):
		return row, fault.New(fault.NotFound, "you have no subscription; the free plan applies")
	case err != nil:
		return row, fault.Wrap(fault.Internal, err, "could not read the subscription")
	}
	return row, nil
}
