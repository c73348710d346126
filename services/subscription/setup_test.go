package subscription

import (
	"context"
	"crypto/rand"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/plans"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/internal/stripetest"
	"github.com/backplane/backplane/services/subscription/dbsqlc"
)

// testPublicURL is where the test product is served: the default redirect origin.
const testPublicURL = "https://app.backplane.test"

// testWebhookSecret signs the test webhook deliveries.
const testWebhookSecret = "whsec_test_0123456789abcdef"

type testBundle struct {
	srv     *Server
	cfg     Config
	deps    service.Deps
	pool    *pgxpool.Pool
	rdb     redis.UniversalClient
	channel string
	stripe  *stripetest.Fake // nil without billing
	tb      testing.TB
}

type option func(*testBundle, *Config, *wiring)

// withStripe turns billing on against a stateful stand-in for Stripe.
func withStripe() option {
	return func(b *testBundle, c *Config, _ *wiring) {
		b.stripe = stripetest.NewFake(b.t())
		c.StripeSecretKey, c.StripeWebhookSecret, c.StripeAPIBase = "sk_test_backplane", testWebhookSecret, b.stripe.URL
	}
}

// withStripeAt turns billing on against the Stripe API at base (stripe-mock).
func withStripeAt(base string) option {
	return func(_ *testBundle, c *Config, _ *wiring) {
		c.StripeSecretKey, c.StripeWebhookSecret, c.StripeAPIBase = "sk_test_backplane", testWebhookSecret, base
	}
}

func withCatalog(cat *plans.Catalog) option {
	return func(_ *testBundle, c *Config, _ *wiring) { c.Catalog = cat }
}

func withNow(now func() time.Time) option {
	return func(_ *testBundle, _ *Config, w *wiring) { w.now = now }
}

// t is the test, for options that start servers.
func (b *testBundle) t() testing.TB { return b.tb }

func setup(t testing.TB, opts ...option) *testBundle {
	t.Helper()
	b := &testBundle{
		pool:    dbtest.NewPool(t, "subscription", migrations()),
		rdb:     redistest.Client(t),
		channel: "subscription-test:" + rand.Text(),
		tb:      t,
	}
	b.cfg = Config{Catalog: plans.Default(), StripeAPIBase: defaultStripeAPIBase}
	// Quick retries: the tests count attempts, not wait for them.
	w := wiring{channel: b.channel, retry: retryPolicy{attempts: 3, timeout: 5 * time.Second, first: 10 * time.Millisecond}}
	for _, o := range opts {
		o(b, &b.cfg, &w)
	}
	b.deps = service.Deps{Logger: slog.New(slog.DiscardHandler), DB: b.pool, Redis: b.rdb, PublicURL: testPublicURL, Issuer: testPublicURL}
	var err error
	b.srv, err = newServer(context.Background(), b.cfg, b.deps, w)
	require.NoError(t, err)
	return b
}

// as returns a context in which userID is the caller, as the interceptor leaves it.
func as(userID uuid.UUID) context.Context {
	return identity.WithPrincipal(context.Background(), identity.Principal{UserID: userID.String(), SessionID: uuid.NewString()})
}

// stored writes a subscription row as if read from Stripe now, and returns it.
func (b *testBundle) stored(t testing.TB, userID uuid.UUID, planID, status string, start, end time.Time) dbsqlc.Subscription {
	t.Helper()
	ctx := context.Background()
	v, err := b.srv.store.readVersion(ctx)
	require.NoError(t, err)
	row, ok, err := b.srv.store.putSubscription(ctx, dbsqlc.SubscriptionUpsertParams{
		ID: uuid.New(), UserID: userID, StripeSubscriptionID: "sub_" + rand.Text(), StripeCustomerID: "cus_" + rand.Text(),
		StripeItemID: "si_" + rand.Text(), StripePriceID: "price_" + rand.Text(), PlanID: planID, Status: status,
		CurrentPeriodStart: start, CurrentPeriodEnd: end, CreateTime: start, ReadVersion: v,
	})
	require.NoError(t, err)
	require.True(t, ok)
	return row
}
