package usage

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/grpctest/authntest"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/plans"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/services/subscription"
)

// testCatalog is the catalogue of the tests: small limits, so that tests reach them,
// and a metered plan.
const testCatalog = `
meters:
  - {name: api_calls, display_name: API calls, unit: calls, aggregation: SUM}
  - {name: storage_bytes, display_name: Storage, unit: bytes, aggregation: MAX}
  - {name: emails_sent, display_name: Emails sent, unit: emails, aggregation: COUNT}
  - {name: seats, display_name: Seats, unit: seats, aggregation: MAX}
plans:
  - id: free
    display_name: Free
    rate_limit_per_minute: 600
    quota_limits: {api_calls: 100, storage_bytes: 1000, emails_sent: 10}
  - id: pro
    display_name: Pro
    rate_limit_per_minute: 3000
    price: {lookup_key: pro, amount: 2000, currency: usd, interval: month}
    quota_limits: {api_calls: 1000, storage_bytes: 100000, emails_sent: 100}
  - id: payg
    display_name: Pay as you go
    rate_limit_per_minute: 3000
    price: {lookup_key: payg, amount: 1, currency: usd, interval: month, meter: api_calls}
`

// testDatabase is a private database migrated as `backplane migrate` leaves it for the
// usage service and the subscription service it asks: both schemas, and usage's River
// schema.
func testDatabase(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return dbtest.NewPool(t, "usage", migrations(),
		dbtest.WithMigrations("subscription", subscription.Definition().Migrations),
		dbtest.WithStep("river migrations (river v0.51.2)", func(ctx context.Context, pool *pgxpool.Pool) error {
			_, err := jobs.Migrate(ctx, pool, "usage", nil)
			return err
		}),
	)
}

// clock is the tests' clock: real time until a test sets it, then moved by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		return time.Now()
	}
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// bundle is what most tests need: the usage service on a private database with the real
// subscription service beside it, the stand-in for the notification service, and clients
// that reach the usage service through the production interceptor chain.
type bundle struct {
	srv      *Server
	pool     *pgxpool.Pool
	subPool  *pgxpool.Pool // the subscription service's schema in the same database
	rdb      redis.UniversalClient
	channel  string
	clock    *clock
	catalog  *plans.Catalog
	authn    *authntest.Authn
	notifier *notifier
	deps     service.Deps
	cfg      Config
	api      api
}

// api is the usage service over gRPC, as its callers reach it.
type api struct {
	// user carries no credential of its own: calls carry a user's token (bundle.as).
	user usagev1.UsageServiceClient
	// internal carries the asset service's service credential, as its calls to
	// ConsumeQuota do.
	internal usagev1.UsageServiceClient
}

type option func(*Config, *wiring)

func withClock(c *clock) option { return func(_ *Config, w *wiring) { w.now = c.Now } }

func setup(t testing.TB, opts ...option) *bundle {
	t.Helper()
	b := &bundle{pool: testDatabase(t), rdb: redistest.Client(t), channel: "usage-test:" + rand.Text(), clock: &clock{}}
	var err error
	b.catalog, err = plans.Parse("test", []byte(testCatalog))
	require.NoError(t, err)
	b.subPool, err = database.Open(t.Context(), b.pool.Config().ConnString(), database.WithSchema("subscription"))
	require.NoError(t, err)
	t.Cleanup(b.subPool.Close)
	b.authn = authntest.New(t, authntest.Config{Redis: b.rdb, APIKeys: testKeys{}})
	b.notifier = &notifier{}

	subConn := b.startSubscription(t)
	notifySrv := grpctest.Start(t, func(reg grpc.ServiceRegistrar) { notificationv1.RegisterNotificationServiceServer(reg, b.notifier) },
		b.authn.Option())
	b.deps = service.Deps{
		Logger: slog.New(slog.DiscardHandler), DB: b.pool, Redis: b.rdb,
		Peers: map[string]*grpc.ClientConn{
			"subscription": subConn,
			"notification": notifySrv.Dial(t, grpc.WithPerRPCCredentials(b.authn.Services.PerRPCCredentials("usage"))),
		},
	}
	b.cfg = defaultConfig()
	b.cfg.Catalog = b.catalog
	w := wiring{now: b.clock.Now, channel: b.channel, jobPoll: 200 * time.Millisecond}
	for _, o := range opts {
		o(&b.cfg, &w)
	}
	b.srv = b.newServer(t, w)
	b.api = b.serve(t, b.srv)
	return b
}

// newServer builds another usage server on the bundle's database: another replica.
func (b *bundle) newServer(t testing.TB, w wiring) *Server {
	t.Helper()
	if w.now == nil {
		w.now, w.channel = b.clock.Now, b.channel
	}
	srv, err := newServer(t.Context(), b.cfg, b.deps, w)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Stop(context.Background())) })
	return srv
}

// serve serves srv over gRPC until the test ends.
func (b *bundle) serve(t testing.TB, srv *Server) api {
	t.Helper()
	s := grpctest.Start(t, func(reg grpc.ServiceRegistrar) { usagev1.RegisterUsageServiceServer(reg, srv) },
		b.authn.Option())
	return api{
		user:     usagev1.NewUsageServiceClient(s.Conn),
		internal: usagev1.NewUsageServiceClient(s.Dial(t, grpc.WithPerRPCCredentials(b.authn.Services.PerRPCCredentials("asset")))),
	}
}

// startSubscription runs the real subscription service, from its Definition, with the
// tests' catalogue, and returns a connection to it carrying the usage service's
// credential.
func (b *bundle) startSubscription(t testing.TB) *grpc.ClientConn {
	t.Helper()
	file := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(file, []byte(testCatalog), 0o600))
	def := subscription.Definition()
	start, err := def.LoadConfig(config.NewEnv(func(k string) string {
		if k == plans.FileVariable {
			return file
		}
		return ""
	}))
	require.NoError(t, err)
	inst, err := start(t.Context(), service.Deps{
		Logger: slog.New(slog.DiscardHandler), DB: b.subPool, Redis: b.rdb,
		PublicURL: "https://app.backplane.test", Issuer: authntest.Issuer,
	})
	require.NoError(t, err)
	srv := grpctest.Start(t, inst.Register, b.authn.Option())
	return srv.Dial(t, grpc.WithPerRPCCredentials(b.authn.Services.PerRPCCredentials("usage")))
}

// subscribe puts user on a paid plan for [start, end), as the subscription service
// stores what it read from Stripe, and returns the subscription item.
func (b *bundle) subscribe(t testing.TB, user uuid.UUID, planID string, start, end time.Time) string {
	t.Helper()
	item := "si_" + rand.Text()
	_, err := b.subPool.Exec(t.Context(), `
		INSERT INTO subscriptions (id, user_id, stripe_subscription_id, stripe_customer_id, stripe_item_id,
			stripe_price_id, plan_id, status, current_period_start, current_period_end, create_time, read_version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $8, nextval('stripe_reads'))`,
		uuid.New(), user, "sub_"+rand.Text(), "cus_"+rand.Text(), item, "price_"+rand.Text(), planID, start, end)
	require.NoError(t, err)
	b.changed(t, user)
	return item
}

// changed announces that user's entitlements changed, as the subscription service does.
func (b *bundle) changed(t testing.TB, user uuid.UUID) {
	t.Helper()
	require.NoError(t, b.rdb.Publish(t.Context(), b.channel, user.String()).Err())
	// The announcement reaches every server's cache asynchronously.
	time.Sleep(50 * time.Millisecond)
}

// as is a request context carrying an access token of user, on a live session.
func (b *bundle) as(t testing.TB, user uuid.UUID) context.Context {
	t.Helper()
	return grpctest.Bearer(t.Context(), b.authn.AccessToken(t, user))
}

// withKey is a request context carrying an API key of user holding scopes.
func (b *bundle) withKey(t testing.TB, user uuid.UUID, scopes ...string) context.Context {
	return grpctest.Bearer(t.Context(), apiKey(user, scopes...))
}

// record records one event of user through the API and returns the answer.
func (b *bundle) record(t testing.TB, user uuid.UUID, meter string, quantity int64, key string) *usagev1.RecordUsageResponse {
	t.Helper()
	resp, err := b.api.user.RecordUsage(b.as(t, user), &usagev1.RecordUsageRequest{Meter: meter, Quantity: quantity, IdempotencyKey: key})
	require.NoError(t, err)
	return resp
}

// summary returns user's standing per meter.
func (b *bundle) summary(t testing.TB, user uuid.UUID) map[string]*usagev1.MeterUsage {
	t.Helper()
	resp, err := b.api.user.GetUsageSummary(b.as(t, user), &usagev1.GetUsageSummaryRequest{})
	require.NoError(t, err)
	out := map[string]*usagev1.MeterUsage{}
	for _, m := range resp.GetMeters() {
		out[m.GetMeter()] = m
	}
	return out
}

// count reads a number from the usage schema.
func (b *bundle) count(t testing.TB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, b.pool.QueryRow(t.Context(), query, args...).Scan(&n))
	return n
}

// apiKey is an API key of user holding scopes, which testKeys resolves.
func apiKey(user uuid.UUID, scopes ...string) string {
	return authn.APIKeyPrefix + user.String() + "." + strings.Join(scopes, ",")
}

// testKeys stands in for the auth service's API-key introspection: a key names its user
// and scopes.
type testKeys struct{}

func (testKeys) Introspect(_ context.Context, key string) (identity.Principal, error) {
	user, scopes, ok := strings.Cut(strings.TrimPrefix(key, authn.APIKeyPrefix), ".")
	if _, err := uuid.Parse(user); err != nil || !ok {
		return identity.Principal{}, authn.ErrInvalidToken
	}
	return identity.Principal{UserID: user, APIKeyID: "key-" + user, Scopes: strings.Split(scopes, ","), Roles: []string{authn.RoleUser}}, nil
}

// notifier stands in for the notification service, the edge of alerts: it records
// every Send, deduplicating by idempotency key as the real one does.
type notifier struct {
	notificationv1.UnimplementedNotificationServiceServer
	mu   sync.Mutex
	sent []*notificationv1.SendRequest
	keys map[string]bool
	fail int // Sends to refuse before accepting
}

func (n *notifier) Send(_ context.Context, req *notificationv1.SendRequest) (*notificationv1.SendResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail > 0 {
		n.fail--
		return nil, fmt.Errorf("the notification service is down")
	}
	if n.keys == nil {
		n.keys = map[string]bool{}
	}
	if n.keys[req.GetIdempotencyKey()] {
		return &notificationv1.SendResponse{NotificationId: uuid.NewString(), Deduplicated: true}, nil
	}
	n.keys[req.GetIdempotencyKey()] = true
	n.sent = append(n.sent, req)
	return &notificationv1.SendResponse{NotificationId: uuid.NewString()}, nil
}

// sentTo returns the notifications sent to user.
func (n *notifier) sentTo(user uuid.UUID) []*notificationv1.SendRequest {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*notificationv1.SendRequest
	for _, r := range n.sent {
		if r.GetUserId() == user.String() {
			out = append(out, r)
		}
	}
	return out
}

// startJobs runs srv's River client until the test ends, as a replica does: it works
// the service's jobs and, when elected, inserts its periodic ones.
func startJobs(t testing.TB, srv *Server) {
	t.Helper()
	require.NoError(t, srv.jobs.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.jobs.Stop(ctx))
	})
}
