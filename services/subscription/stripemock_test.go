package subscription

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/stripetest"
)

// Every request the RPCs and the webhook make is one Stripe's API description accepts at
// stripe-go's version: stripe-mock checks each against it and answers its fixtures.
func TestStripeCallsAgainstStripeMock(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripeAt(stripetest.Mock(t)))
	// stripe-mock's fixture prices carry no lookup key of ours: say which price sells
	// each plan, as a read of Stripe would.
	b.srv.prices.mu.Lock()
	b.srv.prices.prices, b.srv.prices.fetched = map[string]price{}, time.Now()
	for _, p := range b.cfg.Catalog.Plans() {
		if p.Price != nil {
			b.srv.prices.prices[p.Price.LookupKey] = price{id: "price_" + p.ID}
		}
	}
	b.srv.prices.mu.Unlock()
	user := uuid.New()
	ctx := as(user)

	_, err := b.srv.CreateCheckoutSession(ctx, &subscriptionv1.CreateCheckoutSessionRequest{PlanId: "pro_monthly", SuccessUrl: testPublicURL + "/ok", CancelUrl: testPublicURL + "/no"})
	require.NoError(t, err, "customer and checkout session")
	_, err = b.srv.CreateBillingPortalSession(ctx, &subscriptionv1.CreateBillingPortalSessionRequest{ReturnUrl: testPublicURL})
	require.NoError(t, err, "portal session")
	_, err = b.srv.ListInvoices(ctx, &subscriptionv1.ListInvoicesRequest{PageSize: 5})
	require.NoError(t, err, "invoices")

	start := time.Now().UTC().Truncate(time.Second)
	b.stored(t, user, "pro_monthly", "active", start, start.AddDate(0, 1, 0))
	_, err = b.srv.ChangePlan(ctx, &subscriptionv1.ChangePlanRequest{PlanId: "team_monthly"})
	require.NoError(t, err, "change plan")
	_, err = b.srv.CancelSubscription(ctx, &subscriptionv1.CancelSubscriptionRequest{AtPeriodEnd: true, Comment: "testing"})
	require.NoError(t, err, "cancel at period end")

	other := uuid.New()
	b.stored(t, other, "pro_monthly", "active", start, start.AddDate(0, 1, 0))
	_, err = b.srv.CancelSubscription(as(other), &subscriptionv1.CancelSubscriptionRequest{Comment: "testing"})
	require.NoError(t, err, "cancel now")

	for _, ev := range []struct {
		typ    stripe.EventType
		object any
	}{
		{stripe.EventTypeCheckoutSessionCompleted, map[string]any{"id": "cs_test_123", "object": "checkout.session"}},
		{stripe.EventTypeCustomerSubscriptionUpdated, map[string]any{"id": "sub_123", "object": "subscription"}},
		{stripe.EventTypeInvoicePaid, map[string]any{"id": "in_123", "object": "invoice"}},
	} {
		require.NoError(t, b.send(eventID(), ev.typ, ev.object), ev.typ)
	}
}
