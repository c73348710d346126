package ratelimit

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/backplane/backplane/internal/redistest"
)

// testBundle is a Limiter with what a test inspects of it.
type testBundle struct {
	limiter *Limiter
	reader  *sdkmetric.ManualReader
	logs    *syncBuffer
	clock   *fakeClock
}

// setup builds a Limiter on client in mode. Its clock is fake: it drives the
// local floor, the health window and leases, while Redis keeps its own. Its
// Redis timeout is the suite's, not the production default: on a loaded
// machine a real Redis can take longer than 100 ms, and a test that expects
// Redis's decision would get the local floor's. Tests of the timeout itself set
// it with setupConfig.
func setup(t *testing.T, client redis.UniversalClient, mode FailureMode) *testBundle {
	t.Helper()
	return setupConfig(t, Config{Redis: client, FailureMode: mode, RedisTimeout: suiteRedisTimeout})
}

// setupConfig is setup for a Config with more than Redis and FailureMode
// set; it fills in the meter provider, the logger and the clock.
func setupConfig(t *testing.T, cfg Config) *testBundle {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { require.NoError(t, mp.Shutdown(context.Background())) })
	logs := &syncBuffer{}
	clock := newFakeClock()
	cfg.MeterProvider = mp
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	cfg.Now = clock.Now
	limiter, err := New(cfg)
	require.NoError(t, err)
	return &testBundle{limiter: limiter, reader: reader, logs: logs, clock: clock}
}

// deadRedis is a client of a port nothing listens on, failing fast.
func deadRedis(t *testing.T) redis.UniversalClient {
	client := redis.NewClient(&redis.Options{
		Addr:        "127.0.0.1:1",
		MaxRetries:  -1,
		DialTimeout: 200 * time.Millisecond,
	})
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// counts sums a counter's points by their attributes, written "k=v,k=v".
func (b *testBundle) counts(t *testing.T, name string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, b.reader.Collect(t.Context(), &rm))
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			require.True(t, ok, "%s is a sum of int64", name)
			for _, p := range sum.DataPoints {
				var kv []string
				for _, a := range p.Attributes.ToSlice() {
					kv = append(kv, string(a.Key)+"="+a.Value.String())
				}
				got[strings.Join(kv, ",")] += p.Value
			}
		}
	}
	return got
}

// syncBuffer is a log sink safe for the limiter's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	_, err := New(Config{FailureMode: FailureMode(7), LocalMaxKeys: -1})
	require.ErrorContains(t, err, "Redis is required")
	require.ErrorContains(t, err, "MeterProvider is required")
	require.ErrorContains(t, err, "Logger is required")
	require.ErrorContains(t, err, "unknown FailureMode 7")
	require.ErrorContains(t, err, "must not be negative")

	_, err = New(Config{RedisTimeout: -time.Second})
	require.ErrorContains(t, err, "LocalMaxKeys, HealthWindow, RedisTimeout and LeaseTTL must not be negative")
}

func TestLimiterDecidesWithRedisAndCounts(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	b := setup(t, client, FailOpen)
	req := Request{Key: testKey(t), Limit: perHour(2, 2), Policy: PolicyAnonymous, Cost: 1}

	for _, want := range []bool{true, true, false} {
		d, err := b.limiter.Allow(t.Context(), req)
		require.NoError(t, err)
		require.Equal(t, want, d.Allowed)
	}
	// The state is Redis's, shared with every replica.
	n, err := client.Exists(t.Context(), redisKey(req.Key)).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	require.Equal(t, map[string]int64{
		"decision=allowed,policy=anonymous,source=redis": 2,
		"decision=limited,policy=anonymous,source=redis": 1,
	}, b.counts(t, "backplane.ratelimit.decisions"))
	require.Empty(t, b.counts(t, "backplane.ratelimit.redis_failures"))
	require.NoError(t, b.limiter.Healthy(t.Context()))

	req.Cost = 3
	_, err = b.limiter.Allow(t.Context(), req)
	require.ErrorIs(t, err, ErrCostExceedsBurst)
}

func TestLimiterFailsOpenToLocal(t *testing.T) {
	t.Parallel()
	b := setup(t, deadRedis(t), FailOpen)
	req := Request{Key: testKey(t), Limit: perHour(2, 2), Policy: PolicyAuthenticated, Cost: 1}

	for _, want := range []bool{true, true, false} {
		d, err := b.limiter.Allow(t.Context(), req)
		require.NoError(t, err)
		require.Equal(t, want, d.Allowed, "the local floor still limits")
	}

	require.Equal(t, map[string]int64{
		"decision=allowed,policy=authenticated,source=local": 2,
		"decision=limited,policy=authenticated,source=local": 1,
	}, b.counts(t, "backplane.ratelimit.decisions"))
	require.Equal(t, map[string]int64{"action=local": 3}, b.counts(t, "backplane.ratelimit.redis_failures"))

	// One outage, one warning.
	require.Equal(t, 1, strings.Count(b.logs.String(), "rate limiter cannot reach redis"))
	require.Contains(t, b.logs.String(), "failure_mode=open")
}

func TestLimiterFailsClosed(t *testing.T) {
	t.Parallel()
	b := setup(t, deadRedis(t), FailClosed)
	req := Request{Key: testKey(t), Limit: perHour(2, 2), Policy: PolicyAnonymous, Cost: 1}

	_, err := b.limiter.Allow(t.Context(), req)
	require.ErrorIs(t, err, ErrUnavailable)

	require.Equal(t, map[string]int64{"decision=unavailable,policy=anonymous,source=none": 1}, b.counts(t, "backplane.ratelimit.decisions"))
	require.Equal(t, map[string]int64{"action=rejected": 1}, b.counts(t, "backplane.ratelimit.redis_failures"))
}

func TestLimiterFailsClosedWhenAskedWhateverTheMode(t *testing.T) {
	t.Parallel()
	b := setup(t, deadRedis(t), FailOpen)
	login := Request{Key: testKey(t), Limit: perHour(2, 2), Policy: PolicyAnonymous, Cost: 1, FailClosed: true}

	_, err := b.limiter.Allow(t.Context(), login)
	require.ErrorIs(t, err, ErrUnavailable)

	// Other calls still fail open.
	other := login
	other.FailClosed = false
	d, err := b.limiter.Allow(t.Context(), other)
	require.NoError(t, err)
	require.True(t, d.Allowed)

	require.Equal(t, map[string]int64{
		"decision=unavailable,policy=anonymous,source=none": 1,
		"decision=allowed,policy=anonymous,source=local":    1,
	}, b.counts(t, "backplane.ratelimit.decisions"))
	require.Equal(t, map[string]int64{"action=rejected": 1, "action=local": 1}, b.counts(t, "backplane.ratelimit.redis_failures"))
}

func TestLimiterFailsOpenWhenRedisHangs(t *testing.T) {
	t.Parallel()
	b := setupConfig(t, Config{Redis: hangingRedis(t), FailureMode: FailOpen, RedisTimeout: DefaultRedisTimeout})

	start := time.Now()
	d, err := b.limiter.Allow(t.Context(), Request{Key: testKey(t), Limit: perHour(1, 1), Policy: PolicyAnonymous, Cost: 1})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Less(t, time.Since(start), time.Second, "bounded by RedisTimeout, not go-redis's ReadTimeout")
	require.Equal(t, map[string]int64{"action=local": 1}, b.counts(t, "backplane.ratelimit.redis_failures"))
}

// hangingRedis is a client of a server that accepts connections and never
// answers.
func hangingRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = lis.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	client := redis.NewClient(&redis.Options{
		Addr:                  lis.Addr().String(),
		MaxRetries:            -1,
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func TestLimiterHealthReportsRecentFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, deadRedis(t), FailOpen)
	require.NoError(t, b.limiter.Healthy(t.Context()), "healthy before any failure")

	_, err := b.limiter.Allow(t.Context(), Request{Key: testKey(t), Limit: perHour(1, 1), Policy: PolicyAnonymous, Cost: 1})
	require.NoError(t, err)

	err = b.limiter.Healthy(t.Context())
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorContains(t, err, "redis failed 0s ago")

	b.clock.Advance(DefaultHealthWindow + time.Second)
	require.NoError(t, b.limiter.Healthy(t.Context()), "healthy once the window has passed")
}

func TestLimiterHealthRecoversWithRedis(t *testing.T) {
	t.Parallel()
	b := setup(t, redistest.Client(t), FailOpen)
	// A failure just happened; Redis answers again.
	b.limiter.failed(t.Context(), context.DeadlineExceeded, false)

	require.NoError(t, b.limiter.Healthy(t.Context()))
	require.Zero(t, b.limiter.lastFailure.Load())
	require.Contains(t, b.logs.String(), "rate limiter reached redis again")
}

func TestLimiterDoesNotBlameRedisForCancelledCalls(t *testing.T) {
	t.Parallel()
	b := setup(t, redistest.Client(t), FailClosed)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	_, err := b.limiter.Allow(ctx, Request{Key: testKey(t), Limit: perHour(1, 1), Policy: PolicyAnonymous, Cost: 1})
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, ErrUnavailable)
	require.Empty(t, b.counts(t, "backplane.ratelimit.redis_failures"))
	require.NoError(t, b.limiter.Healthy(t.Context()))
}
