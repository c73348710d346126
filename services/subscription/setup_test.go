package subscription

import (
	"context"
	"crypto/rand"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
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
	notices *notices
	metrics *sdkmetric.ManualReader
	wiring  wiring
}

// notices stands in for the notification service: it records what is sent, and fails
// while told to.
type notices struct {
	notificationv1.NotificationServiceClient // only Send is called

	mu   sync.Mutex
	sent []*notificationv1.SendRequest
	fail bool
}

func (n *notices) Send(_ context.Context, req *notificationv1.SendRequest, _ ...grpc.CallOption) (*notificationv1.SendResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail {
		return nil, status.Error(codes.Unavailable, "the notification service is down")
	}
	n.sent = append(n.sent, req)
	return &notificationv1.SendResponse{}, nil
}

func (n *notices) setFail(fail bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fail = fail
}

// all returns what was sent.
func (n *notices) all() []*notificationv1.SendRequest {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.sent)
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
	b.notices = &notices{}
	w := wiring{channel: b.channel, retry: retryPolicy{attempts: 3, timeout: 5 * time.Second, first: 10 * time.Millisecond}, notify: b.notices}
	for _, o := range opts {
		o(b, &b.cfg, &w)
	}
	b.metrics = sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(b.metrics))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	b.deps = service.Deps{Logger: slog.New(slog.DiscardHandler), DB: b.pool, Redis: b.rdb, PublicURL: testPublicURL, Issuer: testPublicURL, MeterProvider: mp}
	b.wiring = w
	b.srv = b.replica(t)
	return b
}

// replica builds another server on the bundle's database, Redis and Stripe: a second
// replica of the service.
func (b *testBundle) replica(t testing.TB) *Server {
	t.Helper()
	srv, err := newServer(context.Background(), b.cfg, b.deps, b.wiring)
	require.NoError(t, err)
	return srv
}

// count sums the points of a counter whose attributes include every one of attrs
// ("k=v").
func (b *testBundle) count(t testing.TB, name string, attrs ...string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, b.metrics.Collect(context.Background(), &rm))
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if m.Name != name || !ok {
				continue
			}
		points:
			for _, dp := range sum.DataPoints {
				for _, a := range attrs {
					k, v, _ := strings.Cut(a, "=")
					if got, ok := dp.Attributes.Value(attribute.Key(k)); !ok || got.AsString() != v {
						continue points
					}
				}
				n += dp.Value
			}
		}
	}
	return n
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
