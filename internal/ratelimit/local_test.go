package ratelimit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/redistest"
)

func TestLocalMatchesRedis(t *testing.T) {
	t.Parallel()
	r := NewRedis(redistest.Client(t))
	local := NewLocal(0, newFakeClock().Now)
	key := testKey(t)
	l := perHour(10, 10)

	for i, cost := range []int{3, 3, 3, 2, 1, 1, 4, 10, 1} {
		want, err := r.Allow(t.Context(), key, l, cost)
		require.NoError(t, err)
		got, err := local.Allow(t.Context(), key, l, cost)
		require.NoError(t, err)

		msg := fmt.Sprintf("call %d, cost %d", i, cost)
		require.Equal(t, want.Allowed, got.Allowed, msg)
		require.Equal(t, want.Limit, got.Limit, msg)
		require.Equal(t, want.Remaining, got.Remaining, msg)
		// Redis's clock moves while the test runs; the fake one does not.
		require.InDelta(t, want.RetryAfter, got.RetryAfter, float64(time.Second), msg)
		require.InDelta(t, want.ResetAfter, got.ResetAfter, float64(time.Second), msg)
	}
}

func TestLocalRefills(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	local := NewLocal(0, clock.Now)
	key := testKey(t)
	l := Limit{Rate: 10, Period: time.Second, Burst: 2} // one per 100ms, two at once

	for _, want := range []bool{true, true, false} {
		d, err := local.Allow(t.Context(), key, l, 1)
		require.NoError(t, err)
		require.Equal(t, want, d.Allowed)
	}
	d, err := local.Allow(t.Context(), key, l, 1)
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Equal(t, 100*time.Millisecond, d.RetryAfter)
	require.Equal(t, 200*time.Millisecond, d.ResetAfter)

	clock.Advance(99 * time.Millisecond)
	d, err = local.Allow(t.Context(), key, l, 1)
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Equal(t, time.Millisecond, d.RetryAfter)

	clock.Advance(time.Millisecond)
	d, err = local.Allow(t.Context(), key, l, 1)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, 0, d.Remaining)

	// Idle for long enough, the whole burst is back, and no more.
	clock.Advance(time.Hour)
	d, err = local.Allow(t.Context(), key, l, 1)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, 1, d.Remaining)
	require.Equal(t, 100*time.Millisecond, d.ResetAfter)
}

func TestLocalConcurrentCallsSpendExactlyTheBurst(t *testing.T) {
	t.Parallel()
	local := NewLocal(0, newFakeClock().Now)
	key := testKey(t)
	l := perHour(100, 100)

	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 10 {
				d, err := local.Allow(t.Context(), key, l, 1)
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

func TestLocalBoundsItsKeys(t *testing.T) {
	t.Parallel()
	const maxKeys = 640 // ten a shard
	local := NewLocal(maxKeys, newFakeClock().Now)
	l := perHour(1, 1)

	size := func() int {
		n := 0
		for i := range local.shards {
			n += len(local.shards[i].tats)
		}
		return n
	}

	for i := range 10 * maxKeys {
		_, err := local.Allow(t.Context(), fmt.Sprintf("k%d", i), l, 1)
		require.NoError(t, err)
	}
	require.LessOrEqual(t, size(), maxKeys)
}

func TestLocalEvictsRefilledKeysFirst(t *testing.T) {
	t.Parallel()
	s := &localShard{tats: map[string]int64{}}
	const now = 1_000_000
	for i := range 8 {
		s.tats[fmt.Sprintf("refilled%d", i)] = now - int64(i) // budget full again
	}
	s.tats["live1"] = now + 1
	s.tats["live2"] = now + 500

	s.evict(now, 10)
	require.Equal(t, map[string]int64{"live1": now + 1, "live2": now + 500}, s.tats)

	// With nothing refilled, arbitrary keys go, down to seven eighths.
	for i := range 8 {
		s.tats[fmt.Sprintf("more%d", i)] = now + 1000
	}
	s.evict(now, 10)
	require.Len(t, s.tats, 8)
}
