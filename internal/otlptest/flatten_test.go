package otlptest

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestUnixNanoTime(t *testing.T) {
	t.Parallel()
	require.Equal(t, time.Unix(0, 0), unixNanoTime(0))
	require.Equal(t, time.Unix(1700000000, 5), unixNanoTime(1700000000_000000005))
	latest := time.Unix(0, math.MaxInt64)
	require.Equal(t, latest, unixNanoTime(math.MaxInt64))
	require.Equal(t, latest, unixNanoTime(math.MaxUint64), "past 2262 is the latest time, not a time before 1970")
}
