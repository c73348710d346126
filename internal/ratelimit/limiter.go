package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrUnavailable reports that no decision could be made because Redis is
// unreachable and the call must fail closed. The edge answers it with gRPC
// UNAVAILABLE (HTTP 503). Errors wrapping it carry the Redis error for logs;
// send clients a fixed message, never the error's text.
var ErrUnavailable = errors.New("ratelimit: rate limiter unavailable")

// Request is one call to decide on.
type Request struct {
	// Key is the budget to spend from, usually [Subject.Key].
	Key string
	// Limit is the budget's size and refill rate, usually from a [Policy].
	Limit Limit
	// Policy names the limit for the decisions metric.
	Policy string
	// Cost is the call's weight, at least 1 and at most Limit.Burst.
	Cost int
	// FailClosed refuses the call while Redis is unreachable, whatever the
	// FailureMode: for login, sign-up and email-sending calls, which must
	// never run with only a per-replica limit.
	FailClosed bool
}

// Limiter is the edge's rate limiter: [Redis] decides, and while Redis is
// unreachable the [FailureMode] (or [Request.FailClosed]) chooses between the
// [Local] floor and [ErrUnavailable]. With [Config.Lease], calls may also be
// decided from units leased from Redis ahead of need. Every decision is
// counted in the backplane.ratelimit.decisions metric and every Redis failure
// in backplane.ratelimit.redis_failures.
type Limiter struct {
	redis   *Redis
	local   *Local
	leases  *leases // nil unless Config.Lease
	client  redis.UniversalClient
	mode    FailureMode
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time
	window  time.Duration
	timeout time.Duration

	// lastFailure is when Redis last failed, in Unix nanoseconds; 0 if it
	// has not failed since the last recovery.
	lastFailure atomic.Int64
	// failing is set from the first failure to the next success, so that an
	// outage is logged once rather than on every call.
	failing atomic.Bool
}

// New returns a limiter for cfg.
func New(cfg Config) (*Limiter, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.MeterProvider)
	if err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	window := cfg.HealthWindow
	if window == 0 {
		window = DefaultHealthWindow
	}
	timeout := cfg.RedisTimeout
	if timeout == 0 {
		timeout = DefaultRedisTimeout
	}
	var ls *leases
	if cfg.Lease {
		ttl := cfg.LeaseTTL
		if ttl == 0 {
			ttl = DefaultLeaseTTL
		}
		ls = newLeases(cfg.LocalMaxKeys, ttl)
	}
	return &Limiter{
		redis:   NewRedis(cfg.Redis),
		local:   NewLocal(cfg.LocalMaxKeys, now),
		leases:  ls,
		client:  cfg.Redis,
		mode:    cfg.FailureMode,
		log:     cfg.Logger,
		metrics: m,
		now:     now,
		window:  window,
		timeout: timeout,
	}, nil
}

// Allow decides on req. It returns an error for invalid requests (see
// [ErrCostExceedsBurst]), when ctx ends first, and, wrapping
// [ErrUnavailable], when Redis is unreachable and the call must fail closed;
// otherwise a decision, allowed or not.
//
// With leases on, a call first spends units its key holds in process; if
// there are not enough, it asks Redis for its cost plus a lease. Calls that
// must fail closed, and every call while Redis is failing, neither spend nor
// take leases: they are decided as if leases were off.
func (l *Limiter) Allow(ctx context.Context, req Request) (Decision, error) {
	g, err := newGCRA(req.Limit, req.Cost)
	if err != nil {
		return Decision{}, err
	}
	leasing := l.leases != nil && !req.FailClosed && !l.failing.Load()
	var r reservation
	if leasing {
		d, res, done, err := l.leaseOrReserve(ctx, req)
		if done || err != nil {
			return d, err
		}
		r = res
	}
	d, granted, err := l.askRedis(ctx, req, g, r.extra)
	source := sourceRedis
	if leasing {
		var fromLease bool
		d, fromLease = l.leases.settle(req.Key, req.Limit, req.Cost, r, granted, d, err == nil, l.now().UnixMicro())
		if fromLease {
			source = sourceLease
		}
	}
	switch {
	case err == nil:
		l.recovered()
	case ctx.Err() != nil:
		// The caller gave up, or ran out of time before Redis's allowance
		// did: that says nothing about Redis, so it is neither counted nor a
		// reason to fall back.
		return Decision{}, ctx.Err()
	case req.FailClosed || l.mode == FailClosed:
		l.failed(ctx, err, true)
		l.metrics.decided(outcomeUnavailable, sourceNone, req.Policy)
		return Decision{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	default:
		l.failed(ctx, err, false)
		d = l.local.allow(req.Key, req.Limit, g, req.Cost)
		source = sourceLocal
	}
	if d.Allowed {
		l.metrics.decided(outcomeAllowed, source, req.Policy)
	} else {
		l.metrics.decided(outcomeLimited, source, req.Policy)
	}
	return d, nil
}

// leaseWaits bounds how many refills in flight a call waits for before it
// asks Redis itself: a busy key's other calls may spend each refill before
// this one wakes.
const leaseWaits = 8

// leaseOrReserve decides req from its key's lease if that holds enough
// units, waiting for a refill in flight if there is one; done reports that it
// did. Otherwise it returns the reservation to ask Redis with. It fails only
// when ctx ends while waiting.
func (l *Limiter) leaseOrReserve(ctx context.Context, req Request) (_ Decision, _ reservation, done bool, _ error) {
	for waits := 0; ; waits++ {
		now := l.now().UnixMicro()
		if d, ok := l.leases.spend(req.Key, req.Limit, req.Cost, now); ok {
			l.metrics.decided(outcomeAllowed, sourceLease, req.Policy)
			return d, reservation{}, true, nil
		}
		r := l.leases.reserve(req.Key, req.Limit, now, waits < leaseWaits)
		if r.wait == nil {
			return Decision{}, r, false, nil
		}
		select {
		case <-r.wait.done:
		case <-ctx.Done():
			return Decision{}, reservation{}, false, ctx.Err()
		}
		if r.wait.failed {
			// Redis did not answer the refill, and is likely failing: ask it
			// as if leases were off rather than wait for another.
			return Decision{}, reservation{}, false, nil
		}
	}
}

// askRedis asks Redis within the limiter's timeout, or the caller's if that
// is sooner: a context costs a timer, and the edge runs this on every call.
// extra is the lease wanted beyond the call's cost; it returns the units
// granted.
func (l *Limiter) askRedis(ctx context.Context, req Request, g gcra, extra int) (Decision, int, error) {
	if deadline, ok := ctx.Deadline(); !ok || time.Until(deadline) > l.timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.timeout)
		defer cancel()
	}
	return l.redis.allow(ctx, req.Key, req.Limit, g, req.Cost, extra)
}

// failed records a Redis failure, logging only the first of an outage.
func (l *Limiter) failed(ctx context.Context, err error, rejected bool) {
	l.metrics.redisFailed(ctx, rejected)
	l.lastFailure.Store(l.now().UnixNano())
	if l.failing.CompareAndSwap(false, true) {
		l.log.WarnContext(ctx, "rate limiter cannot reach redis",
			slog.String("failure_mode", l.mode.String()), slog.Any("error", err))
	}
}

// recovered notes a Redis success; one atomic load while all is well.
func (l *Limiter) recovered() {
	if l.failing.Load() && l.failing.CompareAndSwap(true, false) {
		l.log.Info("rate limiter reached redis again")
	}
}

// Healthy reports, for /readyz, a Redis failure within the health window,
// wrapped in [ErrUnavailable]. Before reporting one it pings Redis, so that
// readiness comes back as soon as Redis does, even with no calls to notice.
//
// In FailOpen mode a replica keeps serving through an outage; whether that
// should also mark it unready (and, Redis being shared, every replica at
// once) is for whoever registers the check to decide.
func (l *Limiter) Healthy(ctx context.Context) error {
	last := l.lastFailure.Load()
	if last == 0 {
		return nil
	}
	ago := l.now().Sub(time.Unix(0, last))
	if ago > l.window {
		return nil
	}
	if err := l.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: redis failed %s ago: %w", ErrUnavailable, ago.Round(time.Millisecond), err)
	}
	l.lastFailure.CompareAndSwap(last, 0)
	l.recovered()
	return nil
}
