package ratelimit

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// What a caller is told is tested by the suite all implementations share
// (suite_test.go); here, what only Local does: bound its memory.

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
