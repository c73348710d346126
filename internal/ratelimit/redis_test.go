package ratelimit

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/redistest"
)

func TestRedisAllowsBurstThenLimits(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	r := NewRedis(client)
	key := testKey(t)
	l := perHour(6, 3) // one unit per 10 minutes, three at once

	for want := 2; want >= 0; want-- {
		d, err := r.Allow(t.Context(), key, l, 1)
		require.NoError(t, err)
		require.True(t, d.Allowed)
		require.Equal(t, 3, d.Limit)
		require.Equal(t, want, d.Remaining)
		require.Zero(t, d.RetryAfter)
		// Full again (3-want) × 10 minutes from now, less the time the test
		// has taken so far.
		require.InDelta(t, time.Duration(3-want)*10*time.Minute, d.ResetAfter, float64(time.Second))
	}

	d, err := r.Allow(t.Context(), key, l, 1)
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Equal(t, 0, d.Remaining)
	require.InDelta(t, 10*time.Minute, d.RetryAfter, float64(time.Second))
	require.InDelta(t, 30*time.Minute, d.ResetAfter, float64(time.Second))

	// The key lives until the budget has refilled, and no longer.
	ttl, err := client.PTTL(t.Context(), redisKey(key)).Result()
	require.NoError(t, err)
	require.InDelta(t, 30*time.Minute, ttl, float64(time.Second))
}

func TestRedisWeighsCost(t *testing.T) {
	t.Parallel()
	r := NewRedis(redistest.Client(t))
	key := testKey(t)
	l := perHour(10, 10)

	d, err := r.Allow(t.Context(), key, l, 4)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, 6, d.Remaining)

	d, err = r.Allow(t.Context(), key, l, 5)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, 1, d.Remaining)

	// Two units are wanted and one is left: refused, and nothing is spent.
	d, err = r.Allow(t.Context(), key, l, 2)
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Equal(t, 1, d.Remaining)
	require.InDelta(t, 6*time.Minute, d.RetryAfter, float64(time.Second))

	d, err = r.Allow(t.Context(), key, l, 1)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, 0, d.Remaining)

	_, err = r.Allow(t.Context(), key, l, 11)
	require.ErrorIs(t, err, ErrCostExceedsBurst)
}

func TestRedisRefills(t *testing.T) {
	t.Parallel()
	r := NewRedis(redistest.Client(t))
	key := testKey(t)
	l := Limit{Rate: 10, Period: time.Second, Burst: 1} // one per 100ms

	d, err := r.Allow(t.Context(), key, l, 1)
	require.NoError(t, err)
	require.True(t, d.Allowed)

	d, err = r.Allow(t.Context(), key, l, 1)
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Greater(t, d.RetryAfter, time.Duration(0))
	require.LessOrEqual(t, d.RetryAfter, 100*time.Millisecond)

	time.Sleep(d.RetryAfter + 5*time.Millisecond)
	d, err = r.Allow(t.Context(), key, l, 1)
	require.NoError(t, err)
	require.True(t, d.Allowed, "allowed once RetryAfter has passed")

	// An idle key's state expires with its budget full.
	require.Eventually(t, func() bool {
		n, err := r.client.Exists(t.Context(), redisKey(key)).Result()
		return err == nil && n == 0
	}, 2*time.Second, 20*time.Millisecond)
}

func TestRedisConcurrentCallsSpendExactlyTheBurst(t *testing.T) {
	t.Parallel()
	r := NewRedis(redistest.Client(t))
	key := testKey(t)
	l := perHour(100, 100)

	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 10 {
				d, err := r.Allow(t.Context(), key, l, 1)
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
	require.EqualValues(t, 100, allowed.Load())
}

func TestRedisLoadsScriptTheServerLacks(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	r := NewRedis(client)
	// A server that has never seen the script (or has restarted) answers
	// EVALSHA with NOSCRIPT, and the call must still succeed. Tests share the
	// server, so rather than flushing its scripts, a script it cannot have
	// seen stands in for ours.
	r.script = newTestScript(t)
	d, err := r.Allow(t.Context(), testKey(t), perHour(5, 5), 1)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, 4, d.Remaining)

	loaded, err := client.ScriptExists(t.Context(), r.script.Hash()).Result()
	require.NoError(t, err)
	require.Equal(t, []bool{true}, loaded)
}
