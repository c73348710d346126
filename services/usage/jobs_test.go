package usage

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// The upkeep creates the months ahead, drops those past the retention with what
// belongs to them, and forgets idempotency keys past their time.
func TestUpkeepKeepsPartitionsAndKeys(t *testing.T) {
	t.Parallel()
	c := &clock{}
	b := setup(t, withClock(c))
	user := uuid.New()

	t.Run("months ahead are created", func(t *testing.T) {
		c.Set(time.Date(2027, 5, 20, 12, 0, 0, 0, time.UTC))
		require.NoError(t, b.srv.upkeep(t.Context()))
		parts, err := b.srv.store.partitions(t.Context())
		require.NoError(t, err)
		for _, want := range []string{"events_2027_04", "events_2027_05", "events_2027_06", "events_2027_07", "events_2027_08"} {
			require.Contains(t, parts, want)
		}
		require.NoError(t, b.srv.upkeep(t.Context()), "a second run finds them there")
		b.record(t, user, "api_calls", 5, "may")
	})
	t.Run("keys are forgotten after their time", func(t *testing.T) {
		c.Set(time.Date(2027, 5, 22, 11, 0, 0, 0, time.UTC))
		b.record(t, user, "api_calls", 5, "later")
		require.NoError(t, b.srv.upkeep(t.Context()))
		require.True(t, b.record(t, user, "api_calls", 5, "may").GetDuplicate(), "47h on, the key is remembered")
		c.Set(time.Date(2027, 5, 22, 13, 0, 0, 0, time.UTC)) // 48h and an hour after "may"
		require.NoError(t, b.srv.upkeep(t.Context()))
		require.Zero(t, b.count(t, "SELECT count(*) FROM idempotency_keys WHERE idempotency_key = 'may'"))
		require.Equal(t, int64(1), b.count(t, "SELECT count(*) FROM idempotency_keys WHERE idempotency_key = 'later'"))
		require.Equal(t, int64(2), b.count(t, "SELECT count(*) FROM events WHERE user_id = $1", user), "the events stay")
	})
	t.Run("months past the retention are dropped with their periods", func(t *testing.T) {
		c.Set(time.Date(2028, 7, 2, 0, 0, 0, 0, time.UTC)) // the cutoff: 2 June 2027
		require.NoError(t, b.srv.upkeep(t.Context()))
		parts, err := b.srv.store.partitions(t.Context())
		require.NoError(t, err)
		require.NotContains(t, parts, "events_2027_04")
		require.NotContains(t, parts, "events_2027_05", "ended 1 June 2027, before the cutoff")
		require.Contains(t, parts, "events_2027_06", "ends after the cutoff")
		require.Contains(t, parts, "events_2028_10", "and the months ahead")
		require.Zero(t, b.count(t, "SELECT count(*) FROM events WHERE user_id = $1", user))
		require.Zero(t, b.count(t, "SELECT count(*) FROM totals WHERE user_id = $1", user))
	})
}
