package subscription

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/stripetest"
)

// deliver hands srv a webhook delivery as the gateway does: the raw body, and the
// Stripe-Signature header as metadata.
func deliver(srv *Server, body []byte, sig string) error {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("stripe-signature", sig))
	_, err := srv.HandleStripeWebhook(ctx, &subscriptionv1.HandleStripeWebhookRequest{Body: &httpbody.HttpBody{ContentType: "application/json", Data: body}})
	return err
}

// signed is an event about object, signed now with the endpoint's secret.
func signed(id string, typ stripe.EventType, object any) ([]byte, string) {
	body := stripetest.Event(id, typ, object)
	return body, stripetest.Sign(body, testWebhookSecret, time.Now())
}

// send delivers an event about object to the bundle's server.
func (b *testBundle) send(id string, typ stripe.EventType, object any) error {
	body, sig := signed(id, typ, object)
	return deliver(b.srv, body, sig)
}

func eventID() string { return "evt_" + rand.Text() }

// outcome returns the ledger's outcome of an event, "" when it is not recorded.
func (b *testBundle) outcome(t testing.TB, id string) string {
	t.Helper()
	ev, err := b.srv.store.event(context.Background(), id)
	if errors.Is(err, database.ErrNotFound) {
		return ""
	}
	require.NoError(t, err)
	return ev.Outcome
}

// planOf returns the plan in force for user.
func (b *testBundle) planOf(t testing.TB, user uuid.UUID) string {
	t.Helper()
	resp, err := b.srv.GetEntitlements(context.Background(), &subscriptionv1.GetEntitlementsRequest{UserId: user.String()})
	require.NoError(t, err)
	return resp.GetPlanId()
}

func TestWebhookCheckoutCompleted(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	b.withPrices()
	user := uuid.New()
	changes := b.rdb.Subscribe(context.Background(), b.channel)
	t.Cleanup(func() { _ = changes.Close() })
	_, err := changes.Receive(context.Background()) // the subscription's confirmation
	require.NoError(t, err)

	session := b.checkout(t, user, "pro_monthly")
	sub := b.stripe.CompleteCheckout(session)
	id := eventID()
	// The payload is what Stripe sent; the service reads the session and the
	// subscription again.
	require.NoError(t, b.send(id, stripe.EventTypeCheckoutSessionCompleted, b.stripe.Session(session)))
	require.Equal(t, outcomeApplied, b.outcome(t, id))
	require.Equal(t, "pro_monthly", b.planOf(t, user))
	resp, err := b.srv.GetSubscription(as(user), &subscriptionv1.GetSubscriptionRequest{})
	require.NoError(t, err)
	require.Equal(t, sub.ID, resp.GetSubscription().GetStripeSubscriptionId())
	require.Equal(t, subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_TRIALING, resp.GetSubscription().GetStatus())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, err := changes.ReceiveMessage(ctx)
	require.NoError(t, err)
	require.Equal(t, user.String(), msg.Payload, "the change is announced")
	require.Equal(t, int64(1), b.count(t, "backplane.subscription.webhook.events", "type=checkout.session.completed", "outcome=applied"))
}

func TestWebhookSignatures(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	b.withPrices()
	user := uuid.New()
	sub := b.stripe.CompleteCheckout(b.checkout(t, user, "pro_monthly"))
	body := stripetest.Event(eventID(), stripe.EventTypeCustomerSubscriptionCreated, sub)

	cases := map[string]func() error{
		"missing": func() error { return deliver(b.srv, body, "") },
		"forged": func() error {
			return deliver(b.srv, body, stripetest.Sign(body, "whsec_someone_else", time.Now()))
		},
		"body changed": func() error {
			sig := stripetest.Sign(body, testWebhookSecret, time.Now())
			return deliver(b.srv, append([]byte(" "), body...), sig)
		},
		"stale": func() error {
			return deliver(b.srv, body, stripetest.Sign(body, testWebhookSecret, time.Now().Add(-6*time.Minute)))
		},
	}
	for name, call := range cases {
		require.Equal(t, codes.Unauthenticated, code(call()), name)
	}
	require.Equal(t, "free", b.planOf(t, user), "nothing changed")
	require.Equal(t, int64(len(cases)), b.count(t, "backplane.subscription.webhook.rejected"))

	require.NoError(t, deliver(b.srv, body, stripetest.Sign(body, testWebhookSecret, time.Now().Add(-4*time.Minute))), "within the tolerance")
	require.Equal(t, "pro_monthly", b.planOf(t, user))
}

func TestWebhookDuplicate(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	b.withPrices()
	user := uuid.New()
	sub := b.subscribe(t, user, "pro_monthly")
	b.stripe.UpdateSubscription(sub.ID, func(s *stripe.Subscription) { s.Status = stripe.SubscriptionStatusCanceled })
	id := eventID()
	body, sig := signed(id, stripe.EventTypeCustomerSubscriptionDeleted, sub)
	require.NoError(t, deliver(b.srv, body, sig))
	require.Len(t, b.notices.all(), 1)
	require.Equal(t, "free", b.planOf(t, user))

	// Stripe's own change, which a redelivery must not clobber with anything.
	b.stripe.UpdateSubscription(sub.ID, func(s *stripe.Subscription) { s.Status = stripe.SubscriptionStatusActive })
	gets := b.stripe.Count("GET", "/v1/subscriptions/")
	require.NoError(t, deliver(b.srv, body, sig), "a duplicate is a 200")
	require.Len(t, b.notices.all(), 1, "sent once")
	require.Equal(t, "free", b.planOf(t, user), "no effect")
	require.Equal(t, gets, b.stripe.Count("GET", "/v1/subscriptions/"), "Stripe not even asked")
	require.Equal(t, int64(1), b.count(t, "backplane.subscription.webhook.events", "outcome=duplicate"))
}

func TestWebhookOutOfOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	b.withPrices()

	t.Run("an old updated after a newer one", func(t *testing.T) {
		user := uuid.New()
		sub := b.subscribe(t, user, "pro_monthly")
		old := b.stripe.Subscription(sub.ID) // pro_monthly, trialing
		team := b.stripe.Prices()[2]
		require.Equal(t, "backplane_team_monthly", team.LookupKey)
		newer := b.stripe.UpdateSubscription(sub.ID, func(s *stripe.Subscription) {
			s.Items.Data[0].Price = team
			s.Status = stripe.SubscriptionStatusActive
		})
		require.NoError(t, b.send(eventID(), stripe.EventTypeCustomerSubscriptionUpdated, newer))
		require.Equal(t, "team_monthly", b.planOf(t, user))
		require.NoError(t, b.send(eventID(), stripe.EventTypeCustomerSubscriptionUpdated, old))
		require.Equal(t, "team_monthly", b.planOf(t, user), "the old payload is not trusted")
	})
	t.Run("updated before created", func(t *testing.T) {
		user := uuid.New()
		sub := b.stripe.CompleteCheckout(b.checkout(t, user, "pro_monthly"))
		updated := b.stripe.UpdateSubscription(sub.ID, func(s *stripe.Subscription) { s.Status = stripe.SubscriptionStatusActive })
		require.NoError(t, b.send(eventID(), stripe.EventTypeCustomerSubscriptionUpdated, updated))
		require.Equal(t, "pro_monthly", b.planOf(t, user))
		created := eventID()
		require.NoError(t, b.send(created, stripe.EventTypeCustomerSubscriptionCreated, sub))
		resp, err := b.srv.GetSubscription(as(user), &subscriptionv1.GetSubscriptionRequest{})
		require.NoError(t, err)
		require.Equal(t, subscriptionv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, resp.GetSubscription().GetStatus())
		require.Equal(t, outcomeApplied, b.outcome(t, created))
	})
	t.Run("a slow read never overwrites a later one", func(t *testing.T) {
		user := uuid.New()
		sub := b.subscribe(t, user, "pro_monthly")
		ctx := context.Background()
		early, err := b.srv.store.readVersion(ctx) // a read that started first ...
		require.NoError(t, err)
		canceled := b.stripe.UpdateSubscription(sub.ID, func(s *stripe.Subscription) { s.Status = stripe.SubscriptionStatusCanceled })
		require.NoError(t, b.send(eventID(), stripe.EventTypeCustomerSubscriptionDeleted, canceled))
		// ... and finishes last, with what it read before the cancellation.
		_, written, err := b.srv.storeSubscription(ctx, b.srv.store, early, sub, user)
		require.NoError(t, err)
		require.False(t, written)
		require.Equal(t, "free", b.planOf(t, user))
	})
}

func TestWebhookAPIVersionMismatch(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	b.withPrices()
	user := uuid.New()
	sub := b.stripe.CompleteCheckout(b.checkout(t, user, "pro_monthly"))
	body := stripetest.EventWithVersion(eventID(), stripe.EventTypeCustomerSubscriptionCreated, sub, "2020-08-27")
	require.NoError(t, deliver(b.srv, body, stripetest.Sign(body, testWebhookSecret, time.Now())), "never a drop")
	require.Equal(t, "pro_monthly", b.planOf(t, user))
	require.Equal(t, int64(1), b.count(t, "backplane.subscription.webhook.api_version_mismatch", "api_version=2020-08-27"))
}

func TestWebhookStripeDownThenRetry(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	b.withPrices()
	user := uuid.New()
	sub := b.stripe.CompleteCheckout(b.checkout(t, user, "pro_monthly"))
	id := eventID()
	body, sig := signed(id, stripe.EventTypeCustomerSubscriptionCreated, sub)
	b.stripe.FailNext(500, 500, 500)
	err := deliver(b.srv, body, sig)
	require.Equal(t, codes.Unavailable, code(err), "5xx, so that Stripe retries")
	require.Empty(t, b.outcome(t, id), "nothing recorded")
	require.Equal(t, "free", b.planOf(t, user), "nothing written")

	require.NoError(t, deliver(b.srv, body, sig), "Stripe's retry")
	require.Equal(t, outcomeApplied, b.outcome(t, id))
	require.Equal(t, "pro_monthly", b.planOf(t, user))
}

func TestWebhookUnknownAndForeign(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	b.withPrices()
	unknown := eventID()
	require.NoError(t, b.send(unknown, "customer.discount.created", map[string]any{"id": "di_123", "object": "discount"}))
	require.Equal(t, outcomeIgnored, b.outcome(t, unknown))

	// A subscription made in the Dashboard for a customer Backplane never made.
	cus := "cus_" + rand.Text()
	foreign := b.stripe.NewSubscription(cus, b.stripe.Prices()[0].ID, nil)
	id := eventID()
	require.NoError(t, b.send(id, stripe.EventTypeCustomerSubscriptionCreated, foreign))
	require.Equal(t, outcomeIgnored, b.outcome(t, id))
	_, err := b.srv.store.subscriptionByStripeID(context.Background(), foreign.ID)
	require.ErrorIs(t, err, database.ErrNotFound)
}

func TestWebhookNotifications(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	b.withPrices()
	user := uuid.New()
	sub := b.subscribe(t, user, "pro_monthly")
	failed := b.stripe.AddInvoice(sub.Customer.ID, sub.ID, stripe.InvoiceStatusOpen, 2000)

	cases := []struct {
		typ    stripe.EventType
		object any
		title  string
	}{
		{stripe.EventTypeInvoicePaymentFailed, failed, "Your payment failed"},
		{stripe.EventTypeInvoicePaymentActionRequired, failed, "Your payment needs your confirmation"},
		{stripe.EventTypeCustomerSubscriptionTrialWillEnd, sub, "Your trial ends on "},
		{stripe.EventTypeCustomerSubscriptionDeleted, sub, "Your subscription has ended"},
	}
	for i, c := range cases {
		id := eventID()
		require.NoError(t, b.send(id, c.typ, c.object), c.typ)
		sent := b.notices.all()
		require.Len(t, sent, i+1, c.typ)
		n := sent[i]
		require.Equal(t, id, n.GetIdempotencyKey(), "the event id")
		require.Equal(t, user.String(), n.GetUserId())
		require.Equal(t, notificationv1.Category_CATEGORY_BILLING, n.GetCategory())
		require.Contains(t, n.GetData()["title"], c.title)
	}
	require.Contains(t, b.notices.all()[0].GetData()["body"], "20.00 USD")

	paid := b.stripe.AddInvoice(sub.Customer.ID, sub.ID, stripe.InvoiceStatusPaid, 2000)
	require.NoError(t, b.send(eventID(), stripe.EventTypeInvoicePaid, paid))
	require.Len(t, b.notices.all(), len(cases), "a paid invoice sends nothing")

	t.Run("notification service down", func(t *testing.T) {
		b.notices.setFail(true)
		id := eventID()
		body, sig := signed(id, stripe.EventTypeInvoicePaymentFailed, failed)
		require.Equal(t, codes.Unavailable, code(deliver(b.srv, body, sig)))
		require.Empty(t, b.outcome(t, id), "nothing recorded, so Stripe's retry sends it")
		b.notices.setFail(false)
		require.NoError(t, deliver(b.srv, body, sig))
		require.Equal(t, id, b.notices.all()[len(cases)].GetIdempotencyKey())
	})
}

// Two replicas receiving the same event at once apply it once: one records it, the
// other waits for that transaction and finds it.
func TestWebhookTwoReplicasAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, withStripe())
	b.withPrices()
	replicas := []*Server{b.srv, b.replica(t), b.replica(t), b.replica(t)}
	for round := range 5 {
		user := uuid.New()
		sub := b.subscribe(t, user, "pro_monthly")
		canceled := b.stripe.UpdateSubscription(sub.ID, func(s *stripe.Subscription) { s.Status = stripe.SubscriptionStatusCanceled })
		id := eventID()
		body, sig := signed(id, stripe.EventTypeCustomerSubscriptionDeleted, canceled)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, srv := range replicas {
			wg.Go(func() {
				<-start
				require.NoError(t, deliver(srv, body, sig))
			})
		}
		close(start)
		wg.Wait()
		require.Len(t, b.notices.all(), round+1, "one notification per event")
		require.Equal(t, outcomeApplied, b.outcome(t, id))
		require.Equal(t, "free", b.planOf(t, user))
	}
}
