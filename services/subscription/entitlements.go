package subscription

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/plans"
)

// GetEntitlements answers what a user's plan allows, from the local copy alone (one
// indexed read, never a call to Stripe), so that the edge, usage and asset services can
// ask on every cache miss.
//
// The plan in force is the subscribed plan while its subscription is trialing, active
// or past_due (Stripe is still retrying a failed payment); in every other status, and
// for users who never subscribed, it is the free plan. The billing period is the
// subscription's current period while its plan applies, else the calendar month in UTC.
// A plan whose price is metered names the subscription item that the usage service
// reports the meter's totals on.
func (s *Server) GetEntitlements(ctx context.Context, req *subscriptionv1.GetEntitlementsRequest) (*subscriptionv1.GetEntitlementsResponse, error) {
	userID, err := uuid.Parse(req.GetUserId())
	if err != nil {
		return nil, fault.New(fault.InvalidArgument, "user_id is not a UUID")
	}
	row, err := s.store.currentSubscription(ctx, userID)
	if err != nil && !errors.Is(err, database.ErrNotFound) {
		return nil, fault.Wrap(fault.Internal, err, "could not read the subscription")
	}
	plan := s.catalog.Free()
	start, end := plans.CalendarMonth(s.now())
	resp := &subscriptionv1.GetEntitlementsResponse{}
	if err == nil {
		resp.Status = statuses[row.Status]
		if grantsPlan(row.Status) {
			if p, ok := s.catalog.Plan(row.PlanID); ok {
				plan, start, end = p, row.CurrentPeriodStart, row.CurrentPeriodEnd
				if p.Price != nil && p.Price.Metered() && row.StripeItemID != "" {
					// The plan's one item carries its metered price: the usage service
					// reports the meter's period total on it.
					resp.MeteredItems = []*subscriptionv1.MeteredItem{{Meter: p.Price.Meter, StripeSubscriptionItemId: row.StripeItemID}}
				}
			} else {
				// The catalogue stopped selling the plan (or never knew its price): the
				// free plan's limits, rather than none, until the operator adds it back.
				s.log.ErrorContext(ctx, "subscribed plan not in the catalogue: applying the free plan",
					"user_id", userID.String(), "plan_id", row.PlanID, "stripe_price_id", row.StripePriceID)
			}
		}
	}
	resp.PlanId = plan.ID
	resp.QuotaLimits = plan.QuotaLimits
	resp.RateLimitPerMinute = int32(min(plan.RateLimitPerMinute, 1<<31-1)) //nolint:gosec // G115: clamped to int32 first.
	resp.Features = plan.Features
	resp.MaxUploadBytes = plan.MaxUploadBytes
	resp.PeriodStart, resp.PeriodEnd = timestamppb.New(start), timestamppb.New(end)
	return resp, nil
}
