package ratelimit

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Values of the decision attribute of backplane.ratelimit.decisions.
const (
	outcomeAllowed     = "allowed"
	outcomeLimited     = "limited"
	outcomeUnavailable = "unavailable"
)

// Values of the source attribute of backplane.ratelimit.decisions: what made
// the decision. None is for calls refused with ErrUnavailable.
const (
	sourceRedis = "redis"
	sourceLease = "lease"
	sourceLocal = "local"
	sourceNone  = "none"
)

// Values of the action attribute of backplane.ratelimit.redis_failures: what
// the limiter did instead of asking Redis.
const (
	actionLocal    = "local"
	actionRejected = "rejected"
)

// meterName is the instrumentation scope of the counters.
const meterName = "github.com/backplane/backplane/internal/ratelimit"

// metrics are the limiter's counters. Attribute sets are built once per
// (decision, source, policy) triple and reused: the decision path runs on every call,
// and policies are few.
type metrics struct {
	decisions     metric.Int64Counter
	redisFailures metric.Int64Counter
	attrs         sync.Map // decisionAttrs → metric.AddOption
	failedLocal   metric.AddOption
	failedReject  metric.AddOption
}

type decisionAttrs struct{ decision, source, policy string }

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	meter := mp.Meter(meterName)
	decisions, err := meter.Int64Counter("backplane.ratelimit.decisions",
		metric.WithDescription("Rate-limit decisions, by decision (allowed, limited, unavailable), source (redis, lease, local, none) and policy."),
		metric.WithUnit("{decision}"))
	if err != nil {
		return nil, fmt.Errorf("ratelimit: decisions counter: %w", err)
	}
	failures, err := meter.Int64Counter("backplane.ratelimit.redis_failures",
		metric.WithDescription("Decisions Redis could not make, by what was done instead (local, rejected)."),
		metric.WithUnit("{failure}"))
	if err != nil {
		return nil, fmt.Errorf("ratelimit: redis failures counter: %w", err)
	}
	return &metrics{
		decisions:     decisions,
		redisFailures: failures,
		failedLocal:   metric.WithAttributeSet(attribute.NewSet(attribute.String("action", actionLocal))),
		failedReject:  metric.WithAttributeSet(attribute.NewSet(attribute.String("action", actionRejected))),
	}, nil
}

// decided counts one decision.
func (m *metrics) decided(ctx context.Context, decision, source, policy string) {
	k := decisionAttrs{decision, source, policy}
	opt, ok := m.attrs.Load(k)
	if !ok {
		opt, _ = m.attrs.LoadOrStore(k, metric.WithAttributeSet(attribute.NewSet(
			attribute.String("decision", decision),
			attribute.String("source", source),
			attribute.String("policy", policy),
		)))
	}
	add, ok := opt.(metric.AddOption)
	if !ok {
		// Only the lines above store into attrs, so this cannot happen; a decision
		// counted without its attributes beats one dropped.
		m.decisions.Add(ctx, 1)
		return
	}
	m.decisions.Add(ctx, 1, add)
}

// redisFailed counts one decision Redis could not make.
func (m *metrics) redisFailed(ctx context.Context, rejected bool) {
	opt := m.failedLocal
	if rejected {
		opt = m.failedReject
	}
	m.redisFailures.Add(ctx, 1, opt)
}
