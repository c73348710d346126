package subscription

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76"
	"google.golang.org/grpc/codes"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/fault"
)

// withPrices puts the default catalogue's prices in the bundle's Stripe, as `backplane
// stripe sync` would.
func (b *testBundle) withPrices() *testBundle {
	b.stripe.AddPrice("backplane_pro_monthly", 2000, "usd", "month")
	b.stripe.AddPrice("backplane_pro_yearly", 20000, "usd", "year")
	b.stripe.AddPrice("backplane_team_monthly", 9900, "usd", "month")
	return b
}

// checkout starts a checkout of plan for user and returns the session id.
func (b *testBundle) checkout(t testing.TB, user uuid.UUID, plan string) string {
	t.Helper()
	resp, err := b.srv.CreateCheckoutSession(as(user), &subscriptionv1.CreateCheckoutSessionRequest{
		PlanId: plan, SuccessUrl: testPublicURL + "/billing/done", CancelUrl: testPublicURL + "/pricing",
	})
	require.NoError(t, err)
	return resp.GetSessionId()
}

// subscribe plays a user buying plan through checkout and the subscription being
// stored, as the webhook stores it, and returns Stripe's subscription.
func (b *testBundle) subscribe(t testing.TB, user uuid.UUID, plan string) *stripe.Subscription {
	t.Helper()
	sub := b.stripe.CompleteCheckout(b.checkout(t, user, plan))
	b.storeFromStripe(t, sub.ID, user)
	return sub
}

// storeFromStripe stores a subscription as Stripe has it now.
func (b *testBundle) storeFromStripe(t testing.TB, id string, user uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	v, err := b.srv.store.readVersion(ctx)
	require.NoError(t, err)
	_, _, err = b.srv.storeSubscription(ctx, b.srv.store, v, b.stripe.Subscription(id), user)
	require.NoError(t, err)
}

func code(err error) codes.Code { return fault.Status(err).Code() }

func TestBillingOff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := as(uuid.New())
	calls := map[string]func() error{
		"checkout": func() error {
			_, err := b.srv.CreateCheckoutSession(ctx, &subscriptionv1.CreateCheckoutSessionRequest{PlanId: "pro_monthly", SuccessUrl: testPublicURL, CancelUrl: testPublicURL})
			return err
		},
		"portal": func() error {
			_, err := b.srv.CreateBillingPortalSession(ctx, &subscriptionv1.CreateBillingPortalSessionRequest{ReturnUrl: testPublicURL})
			return err
		},
		"cancel": func() error {
			_, err := b.srv.CancelSubscription(ctx, &subscriptionv1.CancelSubscriptionRequest{})
			return err
		},
		"resume": func() error {
			_, err := b.srv.ResumeSubscription(ctx, &subscriptionv1.ResumeSubscriptionRequest{})
			return err
		},
		"change plan": func() error {
			_, err := b.srv.ChangePlan(ctx, &subscriptionv1.ChangePlanRequest{PlanId: "team_monthly"})
			return err
		},
		"invoices": func() error {
			_, err := b.srv.ListInvoices(ctx, &subscriptionv1.ListInvoicesRequest{})
			return err
		},
	}
	for name, call := range calls {
		st := fault.Status(call())
		require.Equal(t, codes.FailedPrecondition, st.Code(), name)
		require.Equal(t, "billing is not configured: set BACKPLANE_STRIPE_SECRET_KEY", st.Message(), name)
	}
}

func TestCheckout(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	b.withPrices()
	user := uuid.New()

	t.Run("redirects stay on allowed origins", func(t *testing.T) {
		for _, bad := range []string{"https://evil.example/x", "/relative", "https://app.backplane.test.evil.example/", "javascript:alert(1)", "https://user@app.backplane.test/"} {
			_, err := b.srv.CreateCheckoutSession(as(user), &subscriptionv1.CreateCheckoutSessionRequest{PlanId: "pro_monthly", SuccessUrl: bad, CancelUrl: testPublicURL})
			require.Equal(t, codes.InvalidArgument, code(err), bad)
			_, err = b.srv.CreateCheckoutSession(as(user), &subscriptionv1.CreateCheckoutSessionRequest{PlanId: "pro_monthly", SuccessUrl: testPublicURL, CancelUrl: bad})
			require.Equal(t, codes.InvalidArgument, code(err), bad)
		}
		require.Zero(t, b.stripe.Count("POST", "/v1/checkout/sessions"))
	})
	t.Run("plans", func(t *testing.T) {
		_, err := b.srv.CreateCheckoutSession(as(user), &subscriptionv1.CreateCheckoutSessionRequest{PlanId: "free", SuccessUrl: testPublicURL, CancelUrl: testPublicURL})
		require.Equal(t, codes.InvalidArgument, code(err))
		_, err = b.srv.CreateCheckoutSession(as(user), &subscriptionv1.CreateCheckoutSessionRequest{PlanId: "gold", SuccessUrl: testPublicURL, CancelUrl: testPublicURL})
		require.Equal(t, codes.NotFound, code(err))
	})
	var first string
	t.Run("a first subscription gets the trial", func(t *testing.T) {
		first = b.checkout(t, user, "pro_monthly")
		var req = b.stripe.Requests()
		last := req[len(req)-1]
		require.Equal(t, "/v1/checkout/sessions", last.Path)
		require.Equal(t, "subscription", last.Form.Get("mode"))
		require.Equal(t, user.String(), last.Form.Get("client_reference_id"))
		require.Equal(t, "14", last.Form.Get("subscription_data[trial_period_days]"))
		require.Equal(t, user.String(), last.Form.Get("subscription_data[metadata][user_id]"))
		require.NotEmpty(t, last.IdempotencyKey)
		require.Len(t, b.stripe.Customers(), 1)
		require.Equal(t, user.String(), b.stripe.Customers()[0].Metadata["user_id"])
	})
	t.Run("a retry is the same session", func(t *testing.T) {
		require.Equal(t, first, b.checkout(t, user, "pro_monthly"))
		require.Len(t, b.stripe.Customers(), 1)
	})
	t.Run("a live subscription refuses another checkout", func(t *testing.T) {
		sub := b.stripe.CompleteCheckout(first)
		b.storeFromStripe(t, sub.ID, user)
		_, err := b.srv.CreateCheckoutSession(as(user), &subscriptionv1.CreateCheckoutSessionRequest{PlanId: "team_monthly", SuccessUrl: testPublicURL, CancelUrl: testPublicURL})
		require.Equal(t, codes.FailedPrecondition, code(err))
		b.stripe.UpdateSubscription(sub.ID, func(s *stripe.Subscription) { s.Status = stripe.SubscriptionStatusCanceled })
		b.storeFromStripe(t, sub.ID, user)
	})
	t.Run("no trial on a second subscription", func(t *testing.T) {
		b.checkout(t, user, "team_monthly")
		req := b.stripe.Requests()
		last := req[len(req)-1]
		require.Equal(t, "/v1/checkout/sessions", last.Path)
		require.Empty(t, last.Form.Get("subscription_data[trial_period_days]"))
		require.Len(t, b.stripe.Customers(), 1, "the same customer")
	})
}

// Two concurrent checkouts by one user make one Stripe customer.
func TestOneCustomerPerUser(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	b.withPrices()
	user := uuid.New()
	var wg sync.WaitGroup
	for _, plan := range []string{"pro_monthly", "team_monthly", "pro_yearly", "pro_monthly"} {
		wg.Go(func() {
			_, err := b.srv.CreateCheckoutSession(as(user), &subscriptionv1.CreateCheckoutSessionRequest{PlanId: plan, SuccessUrl: testPublicURL, CancelUrl: testPublicURL})
			require.NoError(t, err)
		})
	}
	wg.Wait()
	require.Len(t, b.stripe.Customers(), 1)
	require.Equal(t, 1, b.stripe.Count("POST", "/v1/customers"))
}

func TestStripeUnreachable(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	b.withPrices()
	user := uuid.New()
	b.checkout(t, user, "pro_monthly") // prices read and customer made
	b.stripe.FailNext(500, 503, 502)
	_, err := b.srv.CreateCheckoutSession(as(user), &subscriptionv1.CreateCheckoutSessionRequest{PlanId: "team_monthly", SuccessUrl: testPublicURL, CancelUrl: testPublicURL})
	require.Equal(t, codes.Unavailable, code(err))

	b.stripe.FailNext(500, 429)
	_, err = b.srv.CreateCheckoutSession(as(user), &subscriptionv1.CreateCheckoutSessionRequest{PlanId: "team_monthly", SuccessUrl: testPublicURL, CancelUrl: testPublicURL})
	require.NoError(t, err, "the third attempt succeeds")
}

func TestBillingPortal(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	b.withPrices()
	user := uuid.New()
	_, err := b.srv.CreateBillingPortalSession(as(user), &subscriptionv1.CreateBillingPortalSessionRequest{ReturnUrl: testPublicURL + "/billing"})
	require.Equal(t, codes.FailedPrecondition, code(err), "no customer yet")

	b.checkout(t, user, "pro_monthly")
	_, err = b.srv.CreateBillingPortalSession(as(user), &subscriptionv1.CreateBillingPortalSessionRequest{ReturnUrl: "https://evil.example/"})
	require.Equal(t, codes.InvalidArgument, code(err))
	resp, err := b.srv.CreateBillingPortalSession(as(user), &subscriptionv1.CreateBillingPortalSessionRequest{ReturnUrl: testPublicURL + "/billing"})
	require.NoError(t, err)
	require.Contains(t, resp.GetUrl(), "https://billing.stripe.test/")
}

func TestCancelResumeAndChangePlan(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	b.withPrices()
	user := uuid.New()
	_, err := b.srv.CancelSubscription(as(user), &subscriptionv1.CancelSubscriptionRequest{})
	require.Equal(t, codes.FailedPrecondition, code(err), "nothing to cancel")
	sub := b.subscribe(t, user, "pro_monthly")
	item := sub.Items.Data[0].ID

	t.Run("resume needs a scheduled cancellation", func(t *testing.T) {
		_, err := b.srv.ResumeSubscription(as(user), &subscriptionv1.ResumeSubscriptionRequest{})
		require.Equal(t, codes.FailedPrecondition, code(err))
	})
	t.Run("cancel at period end", func(t *testing.T) {
		resp, err := b.srv.CancelSubscription(as(user), &subscriptionv1.CancelSubscriptionRequest{AtPeriodEnd: true, Comment: "too dear"})
		require.NoError(t, err)
		require.True(t, resp.GetSubscription().GetCancelAtPeriodEnd())
		require.Equal(t, subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_TRIALING, resp.GetSubscription().GetStatus())
		require.True(t, b.stripe.Subscription(sub.ID).CancelAtPeriodEnd)
	})
	t.Run("resume", func(t *testing.T) {
		resp, err := b.srv.ResumeSubscription(as(user), &subscriptionv1.ResumeSubscriptionRequest{})
		require.NoError(t, err)
		require.False(t, resp.GetSubscription().GetCancelAtPeriodEnd())
		require.False(t, b.stripe.Subscription(sub.ID).CancelAtPeriodEnd)
	})
	t.Run("change plan swaps the price of the same item", func(t *testing.T) {
		_, err := b.srv.ChangePlan(as(user), &subscriptionv1.ChangePlanRequest{PlanId: "pro_monthly"})
		require.Equal(t, codes.FailedPrecondition, code(err), "the same plan")
		_, err = b.srv.ChangePlan(as(user), &subscriptionv1.ChangePlanRequest{PlanId: "free"})
		require.Equal(t, codes.FailedPrecondition, code(err), "the free plan")
		resp, err := b.srv.ChangePlan(as(user), &subscriptionv1.ChangePlanRequest{PlanId: "team_monthly"})
		require.NoError(t, err)
		require.Equal(t, "team_monthly", resp.GetSubscription().GetPlanId())
		got := b.stripe.Subscription(sub.ID)
		require.Len(t, got.Items.Data, 1)
		require.Equal(t, item, got.Items.Data[0].ID)
		require.Equal(t, "backplane_team_monthly", got.Items.Data[0].Price.LookupKey)
		req := b.stripe.Requests()
		require.Equal(t, "create_prorations", req[len(req)-1].Form.Get("proration_behavior"))
		ent, err := b.srv.GetEntitlements(context.Background(), &subscriptionv1.GetEntitlementsRequest{UserId: user.String()})
		require.NoError(t, err)
		require.Equal(t, "team_monthly", ent.GetPlanId(), "felt at once")
	})
	t.Run("cancel now", func(t *testing.T) {
		resp, err := b.srv.CancelSubscription(as(user), &subscriptionv1.CancelSubscriptionRequest{})
		require.NoError(t, err)
		require.Equal(t, subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_CANCELED, resp.GetSubscription().GetStatus())
		ent, err := b.srv.GetEntitlements(context.Background(), &subscriptionv1.GetEntitlementsRequest{UserId: user.String()})
		require.NoError(t, err)
		require.Equal(t, "free", ent.GetPlanId())
		_, err = b.srv.CancelSubscription(as(user), &subscriptionv1.CancelSubscriptionRequest{})
		require.Equal(t, codes.FailedPrecondition, code(err), "already ended")
	})
}

func TestListInvoicesPages(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	b.withPrices()
	user := uuid.New()
	resp, err := b.srv.ListInvoices(as(user), &subscriptionv1.ListInvoicesRequest{})
	require.NoError(t, err)
	require.Empty(t, resp.GetInvoices(), "no customer, no invoices")

	sub := b.subscribe(t, user, "pro_monthly")
	var want []string
	for range 5 {
		want = append([]string{b.stripe.AddInvoice(sub.Customer.ID, sub.ID, stripe.InvoiceStatusPaid, 2000).ID}, want...)
	}
	b.stripe.AddInvoice("cus_someone_else", "", stripe.InvoiceStatusOpen, 100)
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 3)
		resp, err := b.srv.ListInvoices(as(user), &subscriptionv1.ListInvoicesRequest{PageSize: 2, PageToken: token})
		require.NoError(t, err)
		for _, in := range resp.GetInvoices() {
			got = append(got, in.GetId())
			require.Equal(t, subscriptionv1.InvoiceStatus_INVOICE_STATUS_PAID, in.GetStatus())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	require.Equal(t, want, got, "newest first, each once")
	_, err = b.srv.ListInvoices(as(user), &subscriptionv1.ListInvoicesRequest{PageToken: "bogus"})
	require.Equal(t, codes.InvalidArgument, code(err))
}

func TestListSubscriptionsFiltersAndPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	start := time.Now().UTC().Truncate(time.Second)
	var active []string
	for i := range 5 {
		row := b.stored(t, uuid.New(), "pro_monthly", "active", start.Add(time.Duration(i)*time.Minute), start.AddDate(0, 1, 0))
		active = append([]string{row.ID.String()}, active...)
	}
	b.stored(t, uuid.New(), "team_monthly", "active", start, start.AddDate(0, 1, 0))
	b.stored(t, uuid.New(), "pro_monthly", "canceled", start, start.AddDate(0, 1, 0))

	var got []string
	token := ""
	for {
		resp, err := b.srv.ListSubscriptions(context.Background(), &subscriptionv1.ListSubscriptionsRequest{
			PageSize: 2, PageToken: token, PlanId: "pro_monthly", Status: subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE,
		})
		require.NoError(t, err)
		require.LessOrEqual(t, len(resp.GetSubscriptions()), 2)
		for _, s := range resp.GetSubscriptions() {
			got = append(got, s.GetId())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	require.Equal(t, active, got)

	all, err := b.srv.ListSubscriptions(context.Background(), &subscriptionv1.ListSubscriptionsRequest{})
	require.NoError(t, err)
	require.Len(t, all.GetSubscriptions(), 7)
	_, err = b.srv.ListSubscriptions(context.Background(), &subscriptionv1.ListSubscriptionsRequest{PageToken: "x"})
	require.Equal(t, codes.InvalidArgument, code(err))
}
