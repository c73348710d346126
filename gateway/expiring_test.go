package gateway

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestExpiringEntriesLapseAtTheirOwnTime(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	e := newExpiring[int]()
	e.put("ada", 1, start.Add(time.Second))
	e.put("bob", 2, start.Add(time.Minute))

	v, ok := e.get("ada", start)
	require.True(t, ok)
	require.Equal(t, 1, v)
	_, ok = e.get("ada", start.Add(time.Second))
	require.False(t, ok, "an entry lapses at its expiry, not after")
	require.Equal(t, 1, e.len(), "a lapsed entry read is dropped")
	v, ok = e.get("bob", start.Add(time.Second))
	require.True(t, ok)
	require.Equal(t, 2, v)

	_, ok = e.get("carol", start)
	require.False(t, ok)
}

func TestExpiringForgetsOneOrAll(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	e := newExpiring[string]()
	for _, k := range []string{"a", "b", "c"} {
		e.put(k, k, now.Add(time.Hour))
	}
	e.forget("b")
	_, ok := e.get("b", now)
	require.False(t, ok)
	require.Equal(t, 2, e.len())
	e.forget("")
	require.Equal(t, 0, e.len())
}

func TestExpiringSweepDropsOnlyLapsedEntries(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	e := newExpiring[int]()
	e.put("old", 1, now.Add(-time.Second))
	e.put("due", 2, now)
	e.put("new", 3, now.Add(time.Second))
	e.sweep(now)
	require.Equal(t, 1, e.len())
	v, ok := e.get("new", now)
	require.True(t, ok)
	require.Equal(t, 3, v)
}
