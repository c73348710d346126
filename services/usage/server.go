package usage

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/plans"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/internal/validation"
)

// Server implements usagev1.UsageServiceServer.
type Server struct {
	usagev1.UnimplementedUsageServiceServer

	cfg       Config
	log       *slog.Logger
	catalog   *plans.Catalog
	store     *store
	plans     *entitlementCache
	validator *validation.Validator
	notify    notificationv1.NotificationServiceClient
	reporter  *reporter // nil while billing is not configured
	jobs      *jobs.Client
	now       func() time.Time

	stopFollow context.CancelFunc
	following  sync.WaitGroup
}

var _ usagev1.UsageServiceServer = (*Server)(nil)

// New builds the server from its configuration and the process's dependencies: the
// subscription service answers each user's plan and period, the notification service
// sends usage alerts, and background work runs on River. New starts following
// entitlement changes on Redis; Stop ends that and the jobs client.
func New(ctx context.Context, cfg Config, deps service.Deps) (*Server, error) {
	return newServer(ctx, cfg, deps, wiring{})
}

// wiring is what New derives and tests replace. Zero fields take production values.
type wiring struct {
	// now is the clock; time.Now when nil.
	now func() time.Time
	// channel is where entitlement changes are announced; plans.ChangesChannel when
	// empty. Tests use their own, to keep apart on one Redis.
	channel string
	// entitlementTTL is how long a user's entitlements are kept; defaultEntitlementTTL
	// when zero.
	entitlementTTL time.Duration
	// jobPoll is how often idle workers look for jobs that became due; River's default
	// when zero.
	jobPoll time.Duration
}

// defaultEntitlementTTL bounds how stale a user's limits and period may be when the
// announcement of a change is lost (Redis unreachable).
const defaultEntitlementTTL = 30 * time.Second

func newServer(ctx context.Context, cfg Config, deps service.Deps, w wiring) (*Server, error) {
	if deps.Logger == nil || deps.DB == nil || deps.Redis == nil {
		return nil, errors.New("usage: Logger, DB and Redis are required")
	}
	if deps.Peers["subscription"] == nil || deps.Peers["notification"] == nil {
		return nil, errors.New("usage: connections to the subscription and notification services are required")
	}
	if cfg.Catalog == nil {
		cfg.Catalog = plans.Default()
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.channel == "" {
		w.channel = plans.ChangesChannel
	}
	if w.entitlementTTL == 0 {
		w.entitlementTTL = defaultEntitlementTTL
	}
	validator, err := validation.New()
	if err != nil {
		return nil, err
	}
	log := deps.Logger.With("service", "usage")
	s := &Server{
		cfg:       cfg,
		log:       log,
		catalog:   cfg.Catalog,
		store:     newStore(deps.DB),
		validator: validator,
		notify:    notificationv1.NewNotificationServiceClient(deps.Peers["notification"]),
		now:       w.now,
		plans: &entitlementCache{
			client:  subscriptionv1.NewSubscriptionServiceClient(deps.Peers["subscription"]),
			catalog: cfg.Catalog,
			ttl:     w.entitlementTTL,
			now:     w.now,
			log:     log,
			entries: map[uuid.UUID]cachedEntitlements{},
		},
	}
	if cfg.billing() {
		s.reporter = newReporter(cfg, s.store, deps, w.now, log)
	} else {
		log.InfoContext(ctx, "metered usage is not reported to Stripe: BACKPLANE_STRIPE_SECRET_KEY is unset")
	}
	if s.jobs, err = jobs.New(deps.DB, s.jobsConfig(deps, w)); err != nil {
		return nil, err
	}
	followCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopFollow = cancel
	s.following.Go(func() { s.plans.follow(followCtx, deps.Redis, w.channel) })
	return s, nil
}

// Stop ends the server's background work: following entitlement changes, and the
// jobs client when it was started.
func (s *Server) Stop(ctx context.Context) error {
	s.stopFollow()
	s.following.Wait()
	return nil
}
