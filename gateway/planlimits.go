package gateway

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"golang.org/x/sync/singleflight"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/ratelimit"
)

// PlanPolicyConfig configures a PlanPolicy.
type PlanPolicyConfig struct {
	// Subscription answers GetEntitlements (an INTERNAL RPC: the connection carries the
	// gateway's service credential).
	Subscription subscriptionv1.SubscriptionServiceClient
	// Redis carries the subscription service's announcements of changed entitlements.
	Redis redis.UniversalClient
	// Channel is where they are announced; plans.ChangesChannel.
	Channel string
	// Static gives anonymous callers their limit, and authenticated callers theirs while
	// the subscription service cannot be asked (BACKPLANE_RATE_LIMIT_AUTHENTICATED).
	Static ratelimit.StaticPolicy
	// TTL bounds how long a user's limit is kept without an announcement: the
	// staleness while Redis is unreachable. Zero means five minutes.
	TTL time.Duration
	// Timeout bounds one question to the subscription service. Zero means 500 ms.
	Timeout time.Duration
	// Retry is how long a user keeps the static limit after the subscription service
	// failed to answer, before it is asked again. Zero means five seconds.
	Retry         time.Duration
	MeterProvider metric.MeterProvider
	Logger        *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// PlanPolicy gives each authenticated caller the rate limit of their plan
// (rate_limit_per_minute), and anonymous callers the static one. Limits are cached per
// user, so that at steady state a call costs no round trip to the subscription
// service; a user's entry is dropped as soon as the subscription service announces a
// change on Redis, so a new plan holds at the edge within moments of Stripe's webhook.
// While the subscription service cannot answer, the static authenticated limit
// applies, counted in backplane.gateway.ratelimit.plan_fallbacks.
type PlanPolicy struct {
	cfg       PlanPolicyConfig
	flight    singleflight.Group
	fallbacks metric.Int64Counter
	stop      context.CancelFunc
	done      chan struct{}

	mu      sync.Mutex
	entries expiring[planLimit]
	// generation counts invalidations, so that an answer fetched across one is not
	// stored: it may predate the change announced.
	generation uint64
}

var _ ratelimit.Policy = (*PlanPolicy)(nil)

type planLimit struct {
	limit ratelimit.Limit
	name  string
}

// NewPlanPolicy returns a policy following the announcements until Stop (ctx's values
// are kept, its end is not: the process stops the policy on shutdown).
func NewPlanPolicy(ctx context.Context, cfg PlanPolicyConfig) (*PlanPolicy, error) {
	if cfg.TTL == 0 {
		cfg.TTL = 5 * time.Minute
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	if cfg.Retry == 0 {
		cfg.Retry = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MeterProvider == nil {
		cfg.MeterProvider = noop.NewMeterProvider()
	}
	fallbacks, err := cfg.MeterProvider.Meter("github.com/backplane/backplane/gateway").Int64Counter(
		"backplane.gateway.ratelimit.plan_fallbacks",
		metric.WithDescription("Authenticated calls limited by the static BACKPLANE_RATE_LIMIT_AUTHENTICATED because the subscription service could not say the caller's plan."))
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	p := &PlanPolicy{cfg: cfg, fallbacks: fallbacks, stop: stop, done: make(chan struct{}), entries: newExpiring[planLimit]()}
	go func() {
		defer close(p.done)
		p.follow(ctx)
	}()
	return p, nil
}

// Stop ends the following of announcements.
func (p *PlanPolicy) Stop(context.Context) error {
	p.stop()
	<-p.done
	return nil
}

// LimitFor returns the static anonymous limit for anonymous calls, the plan's limit for
// a user's, and the static authenticated limit for an API key without a user or while
// the plan cannot be read.
func (p *PlanPolicy) LimitFor(ctx context.Context, sub ratelimit.Subject) (ratelimit.Limit, string, error) {
	if sub.UserID == "" {
		return p.cfg.Static.LimitFor(ctx, sub)
	}
	now := p.cfg.Now()
	p.mu.Lock()
	e, ok := p.entries.get(sub.UserID, now)
	gen := p.generation
	p.mu.Unlock()
	if ok {
		return e.limit, e.name, nil
	}
	ch := p.flight.DoChan(sub.UserID, func() (any, error) {
		return p.fetch(context.WithoutCancel(ctx), sub.UserID, gen), nil
	})
	select {
	case res := <-ch:
		e, _ := res.Val.(planLimit)
		return e.limit, e.name, nil
	case <-ctx.Done():
		return p.cfg.Static.Authenticated, ratelimit.PolicyAuthenticated, nil
	}
}

// fetch asks the subscription service for a user's plan and keeps the answer; a
// failure keeps the static limit for a few seconds, so that an outage is not a round
// trip per call.
func (p *PlanPolicy) fetch(ctx context.Context, userID string, gen uint64) planLimit {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	e := planLimit{limit: p.cfg.Static.Authenticated, name: ratelimit.PolicyAuthenticated}
	expires := p.cfg.Now().Add(p.cfg.Retry)
	if _, err := uuid.Parse(userID); err != nil {
		return e
	}
	answered := false
	resp, err := p.cfg.Subscription.GetEntitlements(ctx, &subscriptionv1.GetEntitlementsRequest{UserId: userID})
	if err == nil && resp.GetRateLimitPerMinute() > 0 {
		answered = true
		n := int(resp.GetRateLimitPerMinute())
		e = planLimit{limit: ratelimit.Limit{Rate: n, Period: time.Minute, Burst: n}, name: "plan:" + resp.GetPlanId()}
		expires = p.cfg.Now().Add(p.cfg.TTL)
	} else {
		p.fallbacks.Add(ctx, 1)
		if err != nil {
			p.cfg.Logger.WarnContext(ctx, "the caller's plan is unavailable: applying the static authenticated rate limit", "error", err.Error())
		}
	}
	p.mu.Lock()
	// A plan's answer fetched before an announcement may be stale, so it is dropped; the
	// static fallback is kept whatever was announced, so that an outage stays one round
	// trip per Retry even while announcements (or a re-subscription) clear the entries.
	if p.generation == gen || !answered {
		p.entries.put(userID, e, expires)
	}
	p.mu.Unlock()
	return e
}

// forget drops one user's entry, or every entry when userID is empty.
func (p *PlanPolicy) forget(userID string) {
	p.mu.Lock()
	p.entries.forget(userID)
	p.generation++
	p.mu.Unlock()
}

// follow drops the entries of users whose entitlements are announced changed, until ctx
// ends. Each time the subscription to the channel is (re)established every entry goes,
// since announcements made meanwhile were lost.
func (p *PlanPolicy) follow(ctx context.Context) {
	if p.cfg.Redis == nil {
		return
	}
	ps := p.cfg.Redis.Subscribe(ctx, p.cfg.Channel)
	// Receive blocks on the connection whatever its context: closing the subscription
	// is what ends it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer func() {
		if stop() {
			_ = ps.Close()
		}
	}()
	for {
		msg, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			p.forget("")
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			p.forget("")
		case *redis.Message:
			p.forget(m.Payload)
		}
	}
}
