package ratelimit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/redistest"
)

// What a caller is told is tested by the suite all implementations share
// (suite_test.go); here, what only Redis does.

// TestRedisKeyLivesUntilTheBudgetRefills: a key's state expires with its budget full,
// so idle callers cost Redis no memory.
func TestRedisKeyLivesUntilTheBudgetRefills(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	r := NewRedis(client)
	key := testKey(t)
	for range 3 {
		_, err := r.Allow(t.Context(), key, perHour(6, 3), 1)
		require.NoError(t, err)
	}
	ttl, err := client.PTTL(t.Context(), redisKey(key)).Result()
	require.NoError(t, err)
	require.InDelta(t, 30*time.Minute, ttl, float64(time.Second), "three units of ten minutes")

	fast := testKey(t)
	_, err = r.Allow(t.Context(), fast, Limit{Rate: 10, Period: time.Second, Burst: 1}, 1)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		n, err := client.Exists(t.Context(), redisKey(fast)).Result()
		return err == nil && n == 0
	}, 2*time.Second, 20*time.Millisecond)
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
