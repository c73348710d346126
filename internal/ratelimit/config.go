package ratelimit

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
)

// FailureMode is what a [Limiter] does while Redis is unreachable
// (BACKPLANE_RATE_LIMIT_FAILURE_MODE).
type FailureMode int

const (
	// FailOpen lets the in-process [Local] limiter decide: the service stays
	// up, each replica enforcing the limit on its own.
	FailOpen FailureMode = iota
	// FailClosed refuses every call with [ErrUnavailable].
	FailClosed
)

// ParseFailureMode reads "open" or "closed"; empty means open.
func ParseFailureMode(s string) (FailureMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "open":
		return FailOpen, nil
	case "closed":
		return FailClosed, nil
	}
	return 0, fmt.Errorf("ratelimit: failure mode %q: want open or closed", s)
}

// String returns "open" or "closed".
func (m FailureMode) String() string {
	if m == FailClosed {
		return "closed"
	}
	return "open"
}

// Defaults for the optional fields of [Config].
const (
	// DefaultHealthWindow is how long after a Redis failure
	// [Limiter.Healthy] keeps reporting it.
	DefaultHealthWindow = 10 * time.Second
	// DefaultRedisTimeout bounds each decision's round trip to Redis. A
	// decision normally takes well under a millisecond; one that takes this
	// long means Redis is in trouble, and every call at the edge would wait
	// for it, so it counts as a failure and the FailureMode applies.
	DefaultRedisTimeout = 100 * time.Millisecond
)

// Config is what [New] builds a [Limiter] from.
type Config struct {
	// Redis holds the shared state. Required.
	Redis redis.UniversalClient
	// FailureMode is what to do while Redis is unreachable; FailOpen if unset.
	FailureMode FailureMode
	// MeterProvider provides the meter for the decision and failure counters.
	// Required.
	MeterProvider metric.MeterProvider
	// Logger reports Redis going away and coming back. Required.
	Logger *slog.Logger
	// Now is the clock of the local floor and of the health window;
	// time.Now if nil.
	Now func() time.Time
	// LocalMaxKeys bounds the keys the local floor remembers, and those
	// holding leases; DefaultLocalMaxKeys if zero.
	LocalMaxKeys int
	// HealthWindow is how long [Limiter.Healthy] reports a Redis failure;
	// DefaultHealthWindow if zero.
	HealthWindow time.Duration
	// RedisTimeout bounds each decision's round trip to Redis;
	// DefaultRedisTimeout if zero. go-redis bounds reads and writes by the
	// context only when the client's ContextTimeoutEnabled option is set
	// (context_timeout_enabled=true in the URL); without it a Redis that
	// accepts connections but stops answering holds calls for the client's
	// ReadTimeout instead.
	RedisTimeout time.Duration
	// Lease lets the limiter take a few units of a key's budget ahead of
	// need on each round trip to Redis (a twentieth of the limit's Burst, at
	// least 1 and at most 20) and spend them in process, so that a burst of
	// calls costs one round trip per lease rather than one per call. The
	// units are spent in Redis when taken, so no replica ever over-admits;
	// the price is that another replica cannot use them until they are spent
	// or LeaseTTL passes. Off if false.
	Lease bool
	// LeaseTTL is how long leased units stay usable; DefaultLeaseTTL if
	// zero. Units unspent by then are forgotten, and refill in Redis as time
	// passes.
	LeaseTTL time.Duration
}

func (c Config) validate() error {
	var errs []error
	if c.Redis == nil {
		errs = append(errs, errors.New("ratelimit: Redis is required"))
	}
	if c.MeterProvider == nil {
		errs = append(errs, errors.New("ratelimit: MeterProvider is required"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("ratelimit: Logger is required"))
	}
	if c.FailureMode != FailOpen && c.FailureMode != FailClosed {
		errs = append(errs, fmt.Errorf("ratelimit: unknown FailureMode %d", c.FailureMode))
	}
	if c.LocalMaxKeys < 0 || c.HealthWindow < 0 || c.RedisTimeout < 0 || c.LeaseTTL < 0 {
		errs = append(errs, errors.New("ratelimit: LocalMaxKeys, HealthWindow, RedisTimeout and LeaseTTL must not be negative"))
	}
	return errors.Join(errs...)
}
