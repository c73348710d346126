package subscription

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"
	"google.golang.org/protobuf/types/known/timestamppb"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/plans"
)

// CreateCheckoutSession starts a Stripe Checkout session (mode subscription) for a
// first subscription to a paid plan. The session carries the user as its
// client_reference_id and in the subscription's metadata, so that the webhook can tell
// whose subscription Stripe made. The plan's trial applies only to a user who never
// subscribed before. The same request repeated within the hour (a retry) returns the
// same session: its idempotency key is derived from the user, the plan, the URLs and
// the hour.
func (s *Server) CreateCheckoutSession(ctx context.Context, req *subscriptionv1.CreateCheckoutSessionRequest) (*subscriptionv1.CreateCheckoutSessionResponse, error) {
	userID, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.billing(); err != nil {
		return nil, err
	}
	plan, err := s.paidPlan(req.GetPlanId())
	if err != nil {
		return nil, err
	}
	if err := s.checkRedirect("success_url", req.GetSuccessUrl()); err != nil {
		return nil, err
	}
	if err := s.checkRedirect("cancel_url", req.GetCancelUrl()); err != nil {
		return nil, err
	}
	if row, err := s.store.currentSubscription(ctx, userID); err == nil && !ended(row.Status) {
		return nil, fault.New(fault.FailedPrecondition, "you already have a subscription: change its plan instead")
	}
	priceID, err := s.priceID(ctx, plan)
	if err != nil {
		return nil, err
	}
	count, err := s.store.subscriptionCount(ctx, userID)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not read the subscription")
	}
	customer, err := s.customerOf(ctx, userID)
	if err != nil {
		return nil, err
	}

	p := &stripe.CheckoutSessionParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModeSubscription)),
		Customer:          stripe.String(customer),
		ClientReferenceID: stripe.String(userID.String()),
		SuccessURL:        stripe.String(req.GetSuccessUrl()),
		CancelURL:         stripe.String(req.GetCancelUrl()),
		LineItems:         []*stripe.CheckoutSessionLineItemParams{{Price: stripe.String(priceID), Quantity: stripe.Int64(1)}},
		SubscriptionData:  &stripe.CheckoutSessionSubscriptionDataParams{Metadata: map[string]string{"user_id": userID.String(), "plan_id": plan.ID}},
	}
	p.AddMetadata("user_id", userID.String())
	if plan.Price != nil && plan.Price.Metered() {
		p.LineItems[0].Quantity = nil // Stripe refuses a quantity on a metered price.
	}
	trial := count == 0 && plan.TrialDays > 0
	if trial {
		p.SubscriptionData.TrialPeriodDays = stripe.Int64(int64(plan.TrialDays))
	}
	hour := s.now().UTC().Truncate(time.Hour).Format(time.RFC3339)
	key := idempotencyKey("checkout", userID.String(), plan.ID, priceID, req.GetSuccessUrl(), req.GetCancelUrl(), strconv.FormatBool(trial), hour)
	var sess *stripe.CheckoutSession
	err = s.stripe.call(ctx, "create checkout session", func(ctx context.Context) error {
		p.Params = params(ctx, key)
		var err error
		sess, err = s.stripe.api.CheckoutSessions.New(p)
		return err
	})
	if err != nil {
		return nil, stripeFault(err, "could not start the checkout")
	}
	resp := &subscriptionv1.CreateCheckoutSessionResponse{Url: sess.URL, SessionId: sess.ID}
	if sess.ExpiresAt != 0 {
		resp.ExpireTime = timestamppb.New(time.Unix(sess.ExpiresAt, 0))
	}
	return resp, nil
}

// CreateBillingPortalSession starts a Stripe Billing Portal session for the caller's
// customer. A caller who never needed a customer has nothing to manage there.
func (s *Server) CreateBillingPortalSession(ctx context.Context, req *subscriptionv1.CreateBillingPortalSessionRequest) (*subscriptionv1.CreateBillingPortalSessionResponse, error) {
	userID, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.billing(); err != nil {
		return nil, err
	}
	if err := s.checkRedirect("return_url", req.GetReturnUrl()); err != nil {
		return nil, err
	}
	customer, err := s.knownCustomer(ctx, userID)
	if err != nil {
		return nil, err
	}
	if customer == "" {
		return nil, fault.New(fault.FailedPrecondition, "you have no billing account yet: subscribe to a plan first")
	}
	// A portal session works once and expires within minutes: a retry within the minute
	// gets the same one.
	minute := s.now().UTC().Truncate(time.Minute).Format(time.RFC3339)
	key := idempotencyKey("portal", userID.String(), customer, req.GetReturnUrl(), minute)
	var sess *stripe.BillingPortalSession
	err = s.stripe.call(ctx, "create portal session", func(ctx context.Context) error {
		p := &stripe.BillingPortalSessionParams{Params: params(ctx, key), Customer: stripe.String(customer), ReturnURL: stripe.String(req.GetReturnUrl())}
		var err error
		sess, err = s.stripe.api.BillingPortalSessions.New(p)
		return err
	})
	if err != nil {
		return nil, stripeFault(err, "could not open the billing portal")
	}
	return &subscriptionv1.CreateBillingPortalSessionResponse{Url: sess.URL}, nil
}

// paidPlan returns the catalogue's plan id when it is one that can be bought.
func (s *Server) paidPlan(id string) (plans.Plan, error) {
	plan, ok := s.catalog.Plan(id)
	if !ok {
		return plan, fault.New(fault.NotFound, "no plan "+strconv.Quote(id)+" is on sale")
	}
	if plan.Price == nil {
		return plan, fault.New(fault.InvalidArgument, "the free plan needs no subscription")
	}
	return plan, nil
}

// priceID returns the Stripe price that sells plan, FAILED_PRECONDITION when Stripe has
// none under its lookup key.
func (s *Server) priceID(ctx context.Context, plan plans.Plan) (string, error) {
	id, err := s.prices.priceOf(ctx, plan)
	if err != nil {
		return "", stripeFault(err, "could not read the plan's price")
	}
	if id == "" {
		s.log.ErrorContext(ctx, "no active Stripe price for the plan's lookup key: run `backplane stripe sync`",
			"plan_id", plan.ID, "lookup_key", plan.Price.LookupKey)
		return "", fault.New(fault.FailedPrecondition, "this plan is not on sale in Stripe yet")
	}
	return id, nil
}

// checkRedirect refuses a URL the browser would be sent back to unless it is absolute
// and on an allowed origin, so that the API is no open redirect.
func (s *Server) checkRedirect(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || !slices.Contains(s.origins, originOf(u)) {
		return fault.New(fault.InvalidArgument, field+" must be an absolute URL on an origin this deployment allows (BACKPLANE_ALLOWED_REDIRECT_ORIGINS)")
	}
	return nil
}

// userIDOf parses the user id Backplane wrote in a Stripe object's metadata.
func userIDOf(md map[string]string) (uuid.UUID, bool) {
	id, err := uuid.Parse(md["user_id"])
	return id, err == nil
}
