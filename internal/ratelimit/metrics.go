package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

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

// metrics are the limiter's counters.
//
// Decisions are counted in process, one atomic counter per (decision, source, policy)
// triple, and read by the meter when it collects: the decision path runs on every
// call, and an OpenTelemetry counter's Add (its attribute set looked up, its
// aggregation locked) cost as much as a decision from a lease. Policies are few, so
// the triples are.
type metrics struct {
	decisions     sync.Map // decisionAttrs → *decisionCount
	redisFailures metric.Int64Counter
	failedLocal   metric.AddOption
	failedReject  metric.AddOption
}

type decisionAttrs struct{ decision, source, policy string }

// decisionCount is one triple's count and its attributes.
type decisionCount struct {
	n   atomic.Int64
	opt metric.ObserveOption
}

func newDecisionCount(k decisionAttrs) *decisionCount {
	return &decisionCount{opt: metric.WithAttributeSet(attribute.NewSet(
		attribute.String("decision", k.decision),
		attribute.String("source", k.source),
		attribute.String("policy", k.policy),
	))}
}

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	meter := mp.Meter(meterName)
	decisions, err := meter.Int64ObservableCounter("backplane.ratelimit.decisions",
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
	m := &metrics{
		redisFailures: failures,
		failedLocal:   metric.WithAttributeSet(attribute.NewSet(attribute.String("action", actionLocal))),
		failedReject:  metric.WithAttributeSet(attribute.NewSet(attribute.String("action", actionRejected))),
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m.decisions.Range(func(_, v any) bool {
			if c, ok := v.(*decisionCount); ok {
				o.ObserveInt64(decisions, c.n.Load(), c.opt)
			}
			return true
		})
		return nil
	}, decisions)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: decisions callback: %w", err)
	}
	return m, nil
}

// decided counts one decision.
func (m *metrics) decided(decision, source, policy string) {
	k := decisionAttrs{decision, source, policy}
	v, ok := m.decisions.Load(k)
	if !ok {
		v, _ = m.decisions.LoadOrStore(k, newDecisionCount(k))
	}
	if c, ok := v.(*decisionCount); ok { // only the line above stores into decisions
		c.n.Add(1)
	}
}

// redisFailed counts one decision Redis could not make.
func (m *metrics) redisFailed(ctx context.Context, rejected bool) {
	opt := m.failedLocal
	if rejected {
		opt = m.failedReject
	}
	m.redisFailures.Add(ctx, 1, opt)
}
