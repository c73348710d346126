package subscription

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/plans"
	"github.com/backplane/backplane/internal/service"
)

// Server implements subscriptionv1.SubscriptionServiceServer.
type Server struct {
	subscriptionv1.UnimplementedSubscriptionServiceServer

	cfg     Config
	log     *slog.Logger
	catalog *plans.Catalog
	store   *store
	stripe  *stripeAPI // nil while billing is not configured
	prices  *priceBook
	rdb     redis.UniversalClient
	channel string   // where entitlement changes are published
	origins []string // where checkout and portal may send the browser back to
	now     func() time.Time
	notify  notificationv1.NotificationServiceClient // nil: notifications are logged, not sent
	metrics webhookMetrics
}

// webhookMetrics count what Stripe's webhooks bring.
type webhookMetrics struct {
	events          metric.Int64Counter
	rejected        metric.Int64Counter
	versionMismatch metric.Int64Counter
}

func newWebhookMetrics(mp metric.MeterProvider) (webhookMetrics, error) {
	m := mp.Meter("github.com/backplane/backplane/services/subscription")
	var w webhookMetrics
	var err error
	if w.events, err = m.Int64Counter("backplane.subscription.webhook.events",
		metric.WithDescription("Stripe events received with a valid signature, by type and outcome: applied, stale, ignored or duplicate.")); err != nil {
		return w, err
	}
	if w.rejected, err = m.Int64Counter("backplane.subscription.webhook.rejected",
		metric.WithDescription("Webhook deliveries refused for a missing, wrong or stale signature.")); err != nil {
		return w, err
	}
	w.versionMismatch, err = m.Int64Counter("backplane.subscription.webhook.api_version_mismatch",
		metric.WithDescription("Stripe events rendered for another API version than stripe-go's, by version; they are applied."))
	return w, err
}

var _ subscriptionv1.SubscriptionServiceServer = (*Server)(nil)

// New builds the server from its configuration and the process's dependencies. Without
// a Stripe key it serves the catalogue and everyone's free plan, and the RPCs that need
// Stripe answer FAILED_PRECONDITION.
func New(ctx context.Context, cfg Config, deps service.Deps) (*Server, error) {
	return newServer(ctx, cfg, deps, wiring{})
}

// wiring is what New derives and tests replace. Zero fields take production values.
type wiring struct {
	// retry is how Stripe calls are retried; defaultRetry when zero.
	retry retryPolicy
	// channel is the Redis channel entitlement changes are published on;
	// plans.ChangesChannel when empty. Tests use their own, to keep apart on one Redis.
	channel string
	// priceTTL is how long prices read from Stripe are kept; defaultPriceTTL when zero.
	priceTTL time.Duration
	// now is the clock; time.Now when nil.
	now func() time.Time
	// notify sends billing notifications; a client of deps.Peers["notification"] when nil.
	notify notificationv1.NotificationServiceClient
}

func newServer(ctx context.Context, cfg Config, deps service.Deps, w wiring) (*Server, error) {
	if deps.Logger == nil || deps.DB == nil || deps.Redis == nil {
		return nil, errors.New("subscription: Logger, DB and Redis are required")
	}
	if cfg.Catalog == nil {
		cfg.Catalog = plans.Default()
	}
	if w.retry == (retryPolicy{}) {
		w.retry = defaultRetry
	}
	if w.channel == "" {
		w.channel = plans.ChangesChannel
	}
	if w.priceTTL == 0 {
		w.priceTTL = defaultPriceTTL
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.notify == nil && deps.Peers["notification"] != nil {
		w.notify = notificationv1.NewNotificationServiceClient(deps.Peers["notification"])
	}
	mp := deps.MeterProvider
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	metrics, err := newWebhookMetrics(mp)
	if err != nil {
		return nil, err
	}
	log := deps.Logger.With("service", "subscription")
	origins := cfg.AllowedRedirectOrigins
	if len(origins) == 0 && deps.PublicURL != "" {
		u, err := url.Parse(deps.PublicURL)
		if err != nil {
			return nil, errors.New("subscription: the public URL does not parse")
		}
		origins = []string{originOf(u)}
	}
	s := &Server{
		cfg: cfg, log: log, catalog: cfg.Catalog, store: newStore(deps.DB),
		rdb: deps.Redis, channel: w.channel, origins: origins, now: w.now,
		notify: w.notify, metrics: metrics,
	}
	if cfg.BillingConfigured() {
		tp := deps.TracerProvider
		if tp == nil {
			tp = tracenoop.NewTracerProvider()
		}
		s.stripe = newStripeAPI(cfg.StripeSecretKey, cfg.StripeAPIBase, w.retry, tp, log)
		if cfg.StripeWebhookSecret == "" {
			log.WarnContext(ctx, "BACKPLANE_STRIPE_WEBHOOK_SECRET is unset: Stripe's webhooks are refused, so subscriptions will not follow Stripe")
		}
	} else {
		log.InfoContext(ctx, "billing is not configured (BACKPLANE_STRIPE_SECRET_KEY is unset): everyone is on the free plan")
	}
	s.prices = &priceBook{stripe: s.stripe, catalog: cfg.Catalog, ttl: w.priceTTL, now: w.now, log: log}
	return s, nil
}

// billing returns errBillingOff unless a Stripe key is set.
func (s *Server) billing() error {
	if s.stripe == nil {
		return errBillingOff
	}
	return nil
}

// published tells whoever caches entitlements that userID's changed. It runs after the
// change is committed; when Redis is down the caches' own expiry bounds the delay.
func (s *Server) published(ctx context.Context, userID string) {
	if err := s.rdb.Publish(ctx, s.channel, userID).Err(); err != nil {
		s.log.WarnContext(ctx, "publish entitlement change", "user_id", userID, "error", err.Error())
	}
}
