package subscription

import (
	"context"
	"errors"
	"strconv"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/services/subscription/dbsqlc"
)

// CancelSubscription cancels the caller's live subscription, now or at the end of the
// paid period, and returns it as Stripe answered. Ending now refunds nothing.
func (s *Server) CancelSubscription(ctx context.Context, req *subscriptionv1.CancelSubscriptionRequest) (*subscriptionv1.CancelSubscriptionResponse, error) {
	row, err := s.liveSubscription(ctx)
	if err != nil {
		return nil, err
	}
	key := idempotencyKey("cancel", row.StripeSubscriptionID, strconv.FormatBool(req.GetAtPeriodEnd()), strconv.FormatInt(row.ReadVersion, 10))
	out, err := s.changeSubscription(ctx, "cancel subscription", func(ctx context.Context) (*stripe.Subscription, error) {
		if req.GetAtPeriodEnd() {
			p := &stripe.SubscriptionParams{Params: params(ctx, key), CancelAtPeriodEnd: stripe.Bool(true)}
			if c := req.GetComment(); c != "" {
				p.CancellationDetails = &stripe.SubscriptionCancellationDetailsParams{Comment: stripe.String(c)}
			}
			return s.stripe.api.Subscriptions.Update(row.StripeSubscriptionID, p)
		}
		p := &stripe.SubscriptionCancelParams{Params: params(ctx, key)}
		if c := req.GetComment(); c != "" {
			p.CancellationDetails = &stripe.SubscriptionCancelCancellationDetailsParams{Comment: stripe.String(c)}
		}
		return s.stripe.api.Subscriptions.Cancel(row.StripeSubscriptionID, p)
	}, row)
	if err != nil {
		return nil, err
	}
	return &subscriptionv1.CancelSubscriptionResponse{Subscription: subscriptionToProto(out)}, nil
}

// ResumeSubscription withdraws a cancellation scheduled for the end of the period.
func (s *Server) ResumeSubscription(ctx context.Context, _ *subscriptionv1.ResumeSubscriptionRequest) (*subscriptionv1.ResumeSubscriptionResponse, error) {
	row, err := s.liveSubscription(ctx)
	if err != nil {
		return nil, err
	}
	if !row.CancelAtPeriodEnd {
		return nil, fault.New(fault.FailedPrecondition, "your subscription is not set to cancel")
	}
	key := idempotencyKey("resume", row.StripeSubscriptionID, strconv.FormatInt(row.ReadVersion, 10))
	out, err := s.changeSubscription(ctx, "resume subscription", func(ctx context.Context) (*stripe.Subscription, error) {
		return s.stripe.api.Subscriptions.Update(row.StripeSubscriptionID, &stripe.SubscriptionParams{Params: params(ctx, key), CancelAtPeriodEnd: stripe.Bool(false)})
	}, row)
	if err != nil {
		return nil, err
	}
	return &subscriptionv1.ResumeSubscriptionResponse{Subscription: subscriptionToProto(out)}, nil
}

// ChangePlan moves the caller's live subscription to another paid plan by swapping the
// price of its one item, so that Stripe prorates the difference on the next invoice.
// The new plan's entitlements apply as soon as Stripe answers.
func (s *Server) ChangePlan(ctx context.Context, req *subscriptionv1.ChangePlanRequest) (*subscriptionv1.ChangePlanResponse, error) {
	row, err := s.liveSubscription(ctx)
	if err != nil {
		return nil, err
	}
	if row.PlanID == req.GetPlanId() {
		return nil, fault.New(fault.FailedPrecondition, "you are on this plan already")
	}
	plan, ok := s.catalog.Plan(req.GetPlanId())
	if !ok {
		return nil, fault.New(fault.NotFound, "no plan "+strconv.Quote(req.GetPlanId())+" is on sale")
	}
	if plan.Price == nil {
		return nil, fault.New(fault.FailedPrecondition, "to move to the free plan, cancel the subscription")
	}
	priceID, err := s.priceID(ctx, plan)
	if err != nil {
		return nil, err
	}
	key := idempotencyKey("change-plan", row.StripeSubscriptionID, row.StripeItemID, priceID, strconv.FormatInt(row.ReadVersion, 10))
	out, err := s.changeSubscription(ctx, "change plan", func(ctx context.Context) (*stripe.Subscription, error) {
		p := &stripe.SubscriptionParams{
			Params:            params(ctx, key),
			Items:             []*stripe.SubscriptionItemsParams{{ID: stripe.String(row.StripeItemID), Price: stripe.String(priceID)}},
			ProrationBehavior: stripe.String("create_prorations"),
		}
		p.AddMetadata("plan_id", plan.ID)
		return s.stripe.api.Subscriptions.Update(row.StripeSubscriptionID, p)
	}, row)
	if err != nil {
		return nil, err
	}
	return &subscriptionv1.ChangePlanResponse{Subscription: subscriptionToProto(out)}, nil
}

// liveSubscription returns the caller's subscription when billing is on and it has not
// ended; FAILED_PRECONDITION otherwise.
func (s *Server) liveSubscription(ctx context.Context) (dbsqlc.Subscription, error) {
	userID, err := identity.UserID(ctx)
	if err != nil {
		return dbsqlc.Subscription{}, err
	}
	if err := s.billing(); err != nil {
		return dbsqlc.Subscription{}, err
	}
	row, err := s.store.currentSubscription(ctx, userID)
	switch {
	case errors.Is(err, database.ErrNotFound):
		return row, fault.New(fault.FailedPrecondition, "you have no subscription")
	case err != nil:
		return row, fault.Wrap(fault.Internal, err, "could not read the subscription")
	case ended(row.Status):
		return row, fault.New(fault.FailedPrecondition, "your subscription has ended")
	}
	return row, nil
}

// changeSubscription makes one mutating call on a subscription and stores what Stripe
// answered, unless a newer read is stored already; it returns the stored copy.
func (s *Server) changeSubscription(ctx context.Context, what string, op func(ctx context.Context) (*stripe.Subscription, error), row dbsqlc.Subscription) (dbsqlc.Subscription, error) {
	version, err := s.store.readVersion(ctx)
	if err != nil {
		return row, fault.Wrap(fault.Internal, err, "could not change the subscription")
	}
	var sub *stripe.Subscription
	err = s.stripe.call(ctx, what, func(ctx context.Context) error {
		var err error
		sub, err = op(ctx)
		return err
	})
	if err != nil {
		return row, stripeFault(err, "could not change the subscription")
	}
	var out dbsqlc.Subscription
	var written bool
	err = s.store.inTx(ctx, func(tx *store) error {
		var err error
		out, written, err = s.storeSubscription(ctx, tx, version, sub, row.UserID)
		if err == nil && !written {
			out, err = tx.subscriptionByStripeID(ctx, sub.ID)
		}
		return err
	})
	if err != nil {
		return row, fault.Wrap(fault.Internal, err, "Stripe made the change; it shows here shortly")
	}
	if written {
		s.published(ctx, out.UserID.String())
	}
	return out, nil
}

// storeSubscription writes a subscription read from Stripe at version, for userID, and
// reports whether it did (a copy from a later read is kept).
func (s *Server) storeSubscription(ctx context.Context, tx *store, version int64, sub *stripe.Subscription, userID uuid.UUID) (dbsqlc.Subscription, bool, error) {
	p := dbsqlc.SubscriptionUpsertParams{
		ID: uuid.New(), UserID: userID, StripeSubscriptionID: sub.ID, Status: string(sub.Status),
		CurrentPeriodStart: unixTimeOr(sub.CurrentPeriodStart), CurrentPeriodEnd: unixTimeOr(sub.CurrentPeriodEnd),
		CancelAtPeriodEnd: sub.CancelAtPeriodEnd, CancelTime: unixTime(sub.CanceledAt), TrialEndTime: unixTime(sub.TrialEnd),
		CreateTime: unixTimeOr(sub.Created), ReadVersion: version,
	}
	if sub.Customer != nil {
		p.StripeCustomerID = sub.Customer.ID
	}
	if sub.Items != nil && len(sub.Items.Data) > 0 {
		it := sub.Items.Data[0]
		p.StripeItemID = it.ID
		if it.Price != nil {
			p.StripePriceID = it.Price.ID
			if plan, ok := s.prices.planOfPrice(ctx, it.Price.ID, it.Price.LookupKey); ok {
				p.PlanID = plan.ID
			}
		}
	}
	return tx.putSubscription(ctx, p)
}
