package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/redistest"
)

// roundTrips counts the scripts a client sends Redis: one per decision Redis
// makes (two when the server lacks the script).
type roundTrips struct{ n atomic.Int64 }

// countRoundTrips returns a client of the test server counting its scripts.
func countRoundTrips(t *testing.T) (redis.UniversalClient, *roundTrips) {
	t.Helper()
	client := redistest.Client(t)
	rt := &roundTrips{}
	client.AddHook(rt)
	return client, rt
}

func (rt *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (rt *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			rt.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (rt *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// held is how many leased units l holds for key.
func held(l *Limiter, key string) int {
	s := l.leases.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[key]; e != nil {
		return e.units
	}
	return 0
}

func TestLeaseUnits(t *testing.T) {
	t.Parallel()
	for burst, want := range map[int]int{1: 1, 3: 1, 10: 1, 40: 2, 100: 5, 400: 20, 1_000_000: 20} {
		require.Equal(t, want, leaseUnits(perHour(burst, burst)), "burst %d", burst)
	}
}

func TestGCRAGrantsWhatIsLeft(t *testing.T) {
	t.Parallel()
	l := perHour(10, 10)
	g, err := newGCRA(l, 1)
	require.NoError(t, err)
	const now = 1_000_000_000

	d, tat, granted := g.decide(l, 0, now, 3, 4)
	require.True(t, d.Allowed)
	require.Equal(t, 4, granted)
	require.Equal(t, 3, d.Remaining)
	require.Equal(t, micros(7*g.interval), d.ResetAfter)

	d, tat, granted = g.decide(l, tat, now, 1, 5)
	require.True(t, d.Allowed)
	require.Equal(t, 2, granted, "only what is left")
	require.Equal(t, 0, d.Remaining)

	d, _, granted = g.decide(l, tat, now, 1, 5)
	require.False(t, d.Allowed)
	require.Zero(t, granted, "nothing when the cost itself is refused")
}

func TestRedisGrantsLeaseLikeLocal(t *testing.T) {
	t.Parallel()
	r := NewRedis(redistest.Client(t))
	key := testKey(t)
	l := perHour(10, 10)
	g, err := newGCRA(l, 1)
	require.NoError(t, err)

	var tat int64
	const now = 1_000_000_000
	for i, call := range []struct{ cost, extra int }{{3, 4}, {1, 5}, {1, 5}, {1, 0}} {
		d, granted, err := r.allow(t.Context(), key, l, g, call.cost, call.extra)
		require.NoError(t, err)
		// Redis's clock moves while the test runs; no unit refills meanwhile.
		want, newTAT, wantGranted := g.decide(l, tat, now, call.cost, call.extra)
		tat = newTAT
		require.Equal(t, want.Allowed, d.Allowed, "call %d", i)
		require.Equal(t, want.Remaining, d.Remaining, "call %d", i)
		require.Equal(t, wantGranted, granted, "call %d", i)
		require.InDelta(t, want.ResetAfter, d.ResetAfter, float64(time.Second), "call %d", i)
	}
}

func TestLimiterLeasesAreOffByDefault(t *testing.T) {
	t.Parallel()
	client, rt := countRoundTrips(t)
	b := setup(t, client, FailOpen)
	require.Nil(t, b.limiter.leases)
	req := Request{Key: testKey(t), Limit: perHour(1000, 1000), Policy: PolicyAnonymous, Cost: 1}
	for i := range 5 {
		d, err := b.limiter.Allow(t.Context(), req)
		require.NoError(t, err)
		require.Equal(t, 999-i, d.Remaining)
	}
	require.EqualValues(t, 5, rt.n.Load(), "one round trip per call")
}

func TestLimiterLeasesCutRoundTrips(t *testing.T) {
	t.Parallel()
	client, rt := countRoundTrips(t)
	b := setupConfig(t, Config{Redis: client, FailureMode: FailOpen, Lease: true, RedisTimeout: suiteRedisTimeout})
	req := Request{Key: testKey(t), Limit: perHour(1000, 1000), Policy: PolicyAuthenticated, Cost: 1}
	interval := 3600 * time.Millisecond

	for i := range 210 {
		d, err := b.limiter.Allow(t.Context(), req)
		require.NoError(t, err)
		require.True(t, d.Allowed)
		require.Equal(t, 1000, d.Limit)
		// What the caller could spend: Redis's remaining plus the lease.
		require.Equal(t, 999-i, d.Remaining, "call %d", i)
		// The budget refills from everything spent in Redis, lease included.
		require.GreaterOrEqual(t, d.ResetAfter, time.Duration(i+1)*interval-time.Second, "call %d", i)
		require.LessOrEqual(t, d.ResetAfter, time.Duration(i+1+leaseCeiling(req.Limit))*interval, "call %d", i)
		require.Zero(t, d.RetryAfter)
	}
	// Each round trip takes the call's unit and a lease: 20 twice, then, the
	// calls coming faster than leaseQuick (the clock stands still), 40 and
	// then 50, a twentieth of the burst: 21+21+41+51+51+51 units.
	require.EqualValues(t, 6, rt.n.Load())
	require.Equal(t, map[string]int64{
		"decision=allowed,policy=authenticated,source=redis": 6,
		"decision=allowed,policy=authenticated,source=lease": 204,
	}, b.counts(t, "backplane.ratelimit.decisions"))
}

// TestLeaseSizeFollowsTraffic: a key's refills grow while they come within
// leaseQuick of each other, keep their size between leaseQuick and leaseSlow,
// and shrink after longer, never below leaseUnits nor above leaseCeiling.
func TestLeaseSizeFollowsTraffic(t *testing.T) {
	t.Parallel()
	client, rt := countRoundTrips(t)
	b := setupConfig(t, Config{Redis: client, FailureMode: FailOpen, Lease: true, LeaseTTL: time.Hour, RedisTimeout: suiteRedisTimeout})
	req := Request{Key: testKey(t), Limit: perHour(100_000, 100_000), Policy: PolicyAuthenticated, Cost: 1}
	// refill spends what the lease holds and one call more, which refills it,
	// after the clock moved by gap; it returns how many units that refill leased.
	refill := func(gap time.Duration) int {
		t.Helper()
		for held(b.limiter, req.Key) > 0 {
			_, err := b.limiter.Allow(t.Context(), req)
			require.NoError(t, err)
		}
		b.clock.Advance(gap)
		before := rt.n.Load()
		_, err := b.limiter.Allow(t.Context(), req)
		require.NoError(t, err)
		require.Equal(t, before+1, rt.n.Load(), "one round trip")
		return held(b.limiter, req.Key)
	}
	require.Equal(t, 20, refill(0), "the first lease is leaseUnits")
	require.Equal(t, 20, refill(10*time.Millisecond), "sized at the first refill: no gap known yet")
	require.Equal(t, 40, refill(10*time.Millisecond))
	require.Equal(t, 80, refill(10*time.Millisecond), "refills within leaseQuick double the lease")
	require.Equal(t, 160, refill(100*time.Millisecond))
	require.Equal(t, 160, refill(100*time.Millisecond), "between leaseQuick and leaseSlow, the size holds")
	require.Equal(t, 160, refill(time.Second))
	require.Equal(t, 80, refill(time.Second), "after leaseSlow, it halves")
	for range 4 {
		refill(time.Second)
	}
	require.Equal(t, 20, refill(time.Second), "never below leaseUnits")
	for range 12 {
		refill(0)
	}
	require.Equal(t, leaseCeiling(req.Limit), refill(0), "never above a twentieth of the burst")
}

func TestLimiterLeasesKeepSmallLimitsExact(t *testing.T) {
	t.Parallel()
	client, rt := countRoundTrips(t)
	b := setupConfig(t, Config{Redis: client, FailureMode: FailOpen, Lease: true, RedisTimeout: suiteRedisTimeout})
	// The gateway's tests: 3/m leases one unit at a time.
	req := Request{Key: testKey(t), Limit: Limit{Rate: 3, Period: time.Minute, Burst: 3}, Policy: PolicyAnonymous, Cost: 1}
	for i := range 3 {
		d, err := b.limiter.Allow(t.Context(), req)
		require.NoError(t, err)
		require.True(t, d.Allowed, "call %d", i)
		require.Equal(t, 2-i, d.Remaining, "call %d", i)
		require.Equal(t, "3", d.Headers()[HeaderLimit])
	}
	d, err := b.limiter.Allow(t.Context(), req)
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Equal(t, 0, d.Remaining)
	require.Equal(t, "20", d.Headers()[HeaderRetryAfter])
	require.EqualValues(t, 3, rt.n.Load(), "the second call spent the first's lease")

	// A call costing the whole burst is granted no lease, and the next
	// refused, as without leases.
	req = Request{Key: testKey(t), Limit: Limit{Rate: 10, Period: time.Minute, Burst: 10}, Policy: PolicyAnonymous, Cost: 10}
	d, err = b.limiter.Allow(t.Context(), req)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, 0, d.Remaining)
	d, err = b.limiter.Allow(t.Context(), req)
	require.NoError(t, err)
	require.False(t, d.Allowed)
}

// TestLimiterLeasesServeConcurrentCalls has goroutines share one key's
// lease, as a client's concurrent calls do: calls that find it empty while it
// is being refilled wait for the refill rather than each asking Redis.
func TestLimiterLeasesServeConcurrentCalls(t *testing.T) {
	t.Parallel()
	client, rt := countRoundTrips(t)
	b := setupConfig(t, Config{Redis: client, FailureMode: FailOpen, Lease: true, RedisTimeout: suiteRedisTimeout})
	req := Request{Key: testKey(t), Limit: perHour(1_000_000, 1_000_000), Policy: PolicyAuthenticated, Cost: 1}
	const goroutines, calls = 8, 250

	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range calls {
				d, err := b.limiter.Allow(t.Context(), req)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, goroutines*calls, allowed.Load())
	// 2000 calls in leases of 21 would make about 100 round trips; leases
	// growing with the calls' pace make far fewer. A call gives up waiting
	// after a few refills others spent first, so allow a margin.
	require.Less(t, rt.n.Load(), int64(goroutines*calls/21))
	require.Positive(t, rt.n.Load())
}

func TestLimiterLeasesExpire(t *testing.T) {
	t.Parallel()
	client, rt := countRoundTrips(t)
	b := setupConfig(t, Config{Redis: client, FailureMode: FailOpen, Lease: true, LeaseTTL: time.Minute, RedisTimeout: suiteRedisTimeout})
	req := Request{Key: testKey(t), Limit: perHour(100, 100), Policy: PolicyAnonymous, Cost: 1} // leases of 5

	d, err := b.limiter.Allow(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, 99, d.Remaining)
	b.clock.Advance(59 * time.Second)
	d, err = b.limiter.Allow(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, 98, d.Remaining, "spent from the lease within LeaseTTL")
	require.EqualValues(t, 1, rt.n.Load())

	// Once expired, the three units left are forgotten (Redis refills them
	// in time) and the next call takes a new lease.
	b.clock.Advance(time.Second)
	d, err = b.limiter.Allow(t.Context(), req)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.EqualValues(t, 2, rt.n.Load())
	require.Equal(t, 100-6-6+5, d.Remaining)
	require.Equal(t, 5, held(b.limiter, req.Key))
}

func TestLimiterLeasesSkipFailClosedCalls(t *testing.T) {
	t.Parallel()
	client, rt := countRoundTrips(t)
	b := setupConfig(t, Config{Redis: client, FailureMode: FailOpen, Lease: true, RedisTimeout: suiteRedisTimeout})
	req := Request{Key: testKey(t), Limit: perHour(100, 100), Policy: PolicyAnonymous, Cost: 1}
	_, err := b.limiter.Allow(t.Context(), req)
	require.NoError(t, err)

	login := req
	login.FailClosed = true
	d, err := b.limiter.Allow(t.Context(), login)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.EqualValues(t, 2, rt.n.Load(), "decided by Redis, as without leases")
	require.Equal(t, 100-6-1, d.Remaining, "and taking no lease")
	require.Equal(t, 5, held(b.limiter, req.Key))
}

func TestLimiterLeasesFailOpenAsBefore(t *testing.T) {
	t.Parallel()
	b := setupConfig(t, Config{Redis: deadRedis(t), Lease: true})
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
	require.Equal(t, 0, held(b.limiter, req.Key))
}

// TestLimiterLeasesDoNotQueueBehindAHangingRedis has concurrent calls find
// an empty lease while Redis hangs: those waiting for the refill ask Redis
// themselves once it fails, rather than wait for refill after refill.
func TestLimiterLeasesDoNotQueueBehindAHangingRedis(t *testing.T) {
	t.Parallel()
	timeout := 200 * time.Millisecond
	b := setupConfig(t, Config{Redis: hangingRedis(t), Lease: true, RedisTimeout: timeout})
	req := Request{Key: testKey(t), Limit: perHour(100, 100), Policy: PolicyAnonymous, Cost: 1}

	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			d, err := b.limiter.Allow(t.Context(), req)
			if err != nil {
				t.Error(err)
				return
			}
			if !d.Allowed {
				t.Error("the local floor allows the first calls")
			}
		})
	}
	wg.Wait()
	// At worst, one timeout waiting for the refill and one of its own; eight
	// refills in a row would take four times as long.
	require.Less(t, time.Since(start), 3*timeout+timeout/2)
	require.Equal(t, map[string]int64{"decision=allowed,policy=anonymous,source=local": 8}, b.counts(t, "backplane.ratelimit.decisions"))
}

// TestLimiterLeasesNeverOverAdmit has two replicas, each with many
// goroutines, spend one key: together they admit no more than the burst, and
// what they admitted plus what they still hold is exactly what Redis spent.
func TestLimiterLeasesNeverOverAdmit(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	replicas := []*Limiter{
		setupConfig(t, Config{Redis: client, FailureMode: FailOpen, Lease: true, RedisTimeout: suiteRedisTimeout}).limiter,
		setupConfig(t, Config{Redis: client, FailureMode: FailOpen, Lease: true, RedisTimeout: suiteRedisTimeout}).limiter,
	}
	req := Request{Key: testKey(t), Limit: perHour(100, 100), Policy: PolicyAnonymous, Cost: 1}

	var allowed atomic.Int64
	var wg sync.WaitGroup
	for _, l := range replicas {
		for range 20 {
			wg.Go(func() {
				for range 20 {
					d, err := l.Allow(t.Context(), req)
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						allowed.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	left := held(replicas[0], req.Key) + held(replicas[1], req.Key)
	require.LessOrEqual(t, left, 2*leaseUnits(req.Limit), "each replica holds at most one lease")
	require.EqualValues(t, 100, allowed.Load()+int64(left))

	d, err := NewRedis(client).Allow(t.Context(), req.Key, req.Limit, 1)
	require.NoError(t, err)
	require.False(t, d.Allowed, "Redis has nothing left to give")
}

func TestLeasesBoundTheirKeys(t *testing.T) {
	t.Parallel()
	const maxKeys = 640 // ten a shard
	ls := newLeases(maxKeys, time.Second)
	l := perHour(100, 100)
	for i := range 10 * maxKeys {
		key := fmt.Sprintf("k%d", i)
		r := ls.reserve(key, l, 0, true)
		ls.settle(key, l, 1, r, r.extra, Decision{Allowed: true, Limit: 100}, true, 0)
	}
	n := 0
	for i := range ls.shards {
		n += len(ls.shards[i].m)
	}
	require.LessOrEqual(t, n, maxKeys)
}
