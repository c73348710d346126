package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/redistest"
)

// limiterUnderTest is one implementation of a rate-limit decision, as the shared suite
// drives it: Redis and Local directly, Limiter through its Request.
type limiterUnderTest struct {
	// allow decides a call of cost on key's budget under lim.
	allow func(ctx context.Context, key string, lim Limit, cost int) (Decision, error)
	// wait lets d pass for the implementation: the fake clock of Local, real time for
	// Redis, whose clock is the server's, and both for a Limiter, whose leases and local
	// floor read the fake one.
	wait func(d time.Duration)
	// held is how many units the implementation keeps in process for key, already spent
	// in Redis and not yet by any call: a Limiter's leases. Nil means none.
	held func(key string) int
}

// heldFor is l.held(key), or zero for an implementation that holds nothing.
func (l limiterUnderTest) heldFor(key string) int {
	if l.held == nil {
		return 0
	}
	return l.held(key)
}

// TestLimiterSuite runs one set of expectations against every implementation, so
// that they cannot drift apart: what a caller is told must not depend on which one
// decided (River's riverdrivertest idea). What only one of them does (Redis's key
// expiry, Local's memory bound, leases' round trips) is tested beside it.
func TestLimiterSuite(t *testing.T) {
	t.Parallel()
	limiterOn := func(t *testing.T, b *testBundle) limiterUnderTest {
		return limiterUnderTest{
			allow: func(ctx context.Context, key string, lim Limit, cost int) (Decision, error) {
				return b.limiter.Allow(ctx, Request{Key: key, Limit: lim, Policy: PolicyAnonymous, Cost: cost})
			},
			wait: func(d time.Duration) {
				time.Sleep(d)
				b.clock.Advance(d)
			},
			held: func(key string) int {
				if b.limiter.leases == nil {
					return 0
				}
				return held(b.limiter, key)
			},
		}
	}
	for name, newLimiter := range map[string]func(t *testing.T) limiterUnderTest{
		"redis": func(t *testing.T) limiterUnderTest {
			return limiterUnderTest{allow: NewRedis(redistest.Client(t)).Allow, wait: time.Sleep}
		},
		"local": func(*testing.T) limiterUnderTest {
			clock := newFakeClock()
			return limiterUnderTest{allow: NewLocal(0, clock.Now).Allow, wait: clock.Advance}
		},
		// The suite judges what the limiter decides, not how fast: Redis gets seconds, not
		// production's 100 ms, so that a loaded machine (fifty goroutines under the race
		// detector) does not fail a decision closed. TestLimiterFailsOpenWhenRedisHangs tests
		// the bound.
		"limiter": func(t *testing.T) limiterUnderTest {
			return limiterOn(t, setupConfig(t, Config{Redis: redistest.Client(t), FailureMode: FailClosed, RedisTimeout: suiteRedisTimeout}))
		},
		"limiter with leases": func(t *testing.T) limiterUnderTest {
			return limiterOn(t, setupConfig(t, Config{Redis: redistest.Client(t), FailureMode: FailClosed, Lease: true, RedisTimeout: suiteRedisTimeout}))
		},
		"limiter on its local floor": func(t *testing.T) limiterUnderTest {
			b := setup(t, deadRedis(t), FailOpen)
			l := limiterOn(t, b)
			l.wait = b.clock.Advance // nothing reads real time
			return l
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runLimiterSuite(t, newLimiter)
		})
	}
}

// suiteRedisTimeout bounds the suite's Redis round trips; see TestLimiterSuite.
const suiteRedisTimeout = 5 * time.Second

// runLimiterSuite is what every implementation must do. Limits are per hour unless a
// case is about time passing, so that no unit refills while a case runs on a slow
// machine; times measured by Redis's moving clock are compared within a second.
func runLimiterSuite(t *testing.T, newLimiter func(t *testing.T) limiterUnderTest) {
	allow := func(t *testing.T, l limiterUnderTest, key string, lim Limit, cost int) Decision {
		t.Helper()
		d, err := l.allow(t.Context(), key, lim, cost)
		require.NoError(t, err)
		require.Equal(t, lim.Burst, d.Limit)
		if d.Allowed {
			require.Zero(t, d.RetryAfter)
		}
		return d
	}

	t.Run("admits the burst then refuses", func(t *testing.T) {
		t.Parallel()
		l, key := newLimiter(t), testKey(t)
		lim := perHour(6, 3) // one unit per 10 minutes, three at once

		for want := 2; want >= 0; want-- {
			d := allow(t, l, key, lim, 1)
			require.True(t, d.Allowed)
			require.Equal(t, want, d.Remaining)
			// Full again 10 minutes from now for every unit spent in Redis: by calls,
			// or held for the next ones.
			spent := 3 - want + l.heldFor(key)
			require.InDelta(t, time.Duration(spent)*10*time.Minute, d.ResetAfter, float64(time.Second))
		}
		for range 2 {
			d := allow(t, l, key, lim, 1)
			require.False(t, d.Allowed)
			require.Equal(t, 0, d.Remaining)
		}
	})

	t.Run("tells a refused caller when to retry", func(t *testing.T) {
		t.Parallel()
		l, key := newLimiter(t), testKey(t)
		lim := perHour(6, 3)
		for range 3 {
			require.True(t, allow(t, l, key, lim, 1).Allowed)
		}
		d := allow(t, l, key, lim, 1)
		require.False(t, d.Allowed)
		require.InDelta(t, 10*time.Minute, d.RetryAfter, float64(time.Second), "one unit's refill")
		require.InDelta(t, 30*time.Minute, d.ResetAfter, float64(time.Second), "the whole burst's")

		// A call of a bigger cost waits for more units.
		d = allow(t, l, key, lim, 2)
		require.False(t, d.Allowed)
		require.InDelta(t, 20*time.Minute, d.RetryAfter, float64(time.Second))
	})

	t.Run("keeps keys apart", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t)
		spent, other := testKey(t), testKey(t)
		lim := perHour(2, 2)
		for range 2 {
			require.True(t, allow(t, l, spent, lim, 1).Allowed)
		}
		require.False(t, allow(t, l, spent, lim, 1).Allowed)

		d := allow(t, l, other, lim, 1)
		require.True(t, d.Allowed, "another key's budget is untouched")
		require.Equal(t, 1, d.Remaining)
		require.False(t, allow(t, l, spent, lim, 1).Allowed, "and spending it gives nothing back")
	})

	t.Run("weighs calls by cost", func(t *testing.T) {
		t.Parallel()
		l, key := newLimiter(t), testKey(t)
		lim := perHour(10, 10) // one unit per 6 minutes

		d := allow(t, l, key, lim, 4)
		require.True(t, d.Allowed)
		require.Equal(t, 6, d.Remaining)
		require.InDelta(t, time.Duration(4+l.heldFor(key))*6*time.Minute, d.ResetAfter, float64(time.Second))

		d = allow(t, l, key, lim, 5)
		require.True(t, d.Allowed)
		require.Equal(t, 1, d.Remaining)

		// Two units are wanted and one is left: refused, and nothing is spent.
		d = allow(t, l, key, lim, 2)
		require.False(t, d.Allowed)
		require.Equal(t, 1, d.Remaining)
		d = allow(t, l, key, lim, 1)
		require.True(t, d.Allowed)
		require.Equal(t, 0, d.Remaining)

		d = allow(t, l, key, lim, 2)
		require.False(t, d.Allowed)
		require.InDelta(t, 12*time.Minute, d.RetryAfter, float64(time.Second), "two units' refill")

		_, err := l.allow(t.Context(), key, lim, lim.Burst+1)
		require.ErrorIs(t, err, ErrCostExceedsBurst, "a cost above the burst could never be allowed")
		_, err = l.allow(t.Context(), key, lim, 0)
		require.Error(t, err)
	})

	t.Run("refills with time", func(t *testing.T) {
		t.Parallel()
		l, key := newLimiter(t), testKey(t)
		lim := Limit{Rate: 10, Period: time.Second, Burst: 2} // one unit per 100ms, two at once

		require.True(t, allow(t, l, key, lim, 1).Allowed)
		require.True(t, allow(t, l, key, lim, 1).Allowed)
		d := allow(t, l, key, lim, 1)
		require.False(t, d.Allowed)
		require.Greater(t, d.RetryAfter, time.Duration(0))
		require.LessOrEqual(t, d.RetryAfter, 100*time.Millisecond)

		// Part of the wait shortens the wait.
		l.wait(d.RetryAfter / 2)
		again := allow(t, l, key, lim, 1)
		if !again.Allowed { // a busy machine may have slept the whole wait
			require.Less(t, again.RetryAfter, d.RetryAfter)
			l.wait(again.RetryAfter)
			require.True(t, allow(t, l, key, lim, 1).Allowed, "allowed once RetryAfter has passed")
		}

		// Idle for long enough, the whole burst is back, and no more.
		l.wait(3 * 100 * time.Millisecond)
		d = allow(t, l, key, lim, 1)
		require.True(t, d.Allowed)
		require.Equal(t, 1, d.Remaining)
	})

	t.Run("never overspends under concurrent calls", func(t *testing.T) {
		t.Parallel()
		l, key := newLimiter(t), testKey(t)
		lim := perHour(100, 100)

		var allowed atomic.Int64
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				for range 10 {
					d, err := l.allow(t.Context(), key, lim, 1)
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
		require.EqualValues(t, lim.Burst, allowed.Load()+int64(l.heldFor(key)), "every unit spent once: by a call, or held for the next")
	})
}
