package redisclient

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaultsBoundACommandWithoutOverridingTheURL(t *testing.T) {
	t.Parallel()
	ep, err := parseURL("redis://127.0.0.1:6379/0")
	require.NoError(t, err)
	o := ep.withDefaults().single
	require.True(t, o.ContextTimeoutEnabled, "a caller's deadline reaches the socket")
	require.Equal(t, defaultIOTimeout, o.ReadTimeout)
	require.Equal(t, defaultIOTimeout, o.WriteTimeout)
	require.Equal(t, defaultDialTimeout, o.DialTimeout)
	require.Equal(t, defaultPoolTimeout, o.PoolTimeout)
	require.Equal(t, defaultMaxRetries, o.MaxRetries)
	// Worst case for a command nobody answers: every try times out, plus backoff.
	require.Less(t, time.Duration(o.MaxRetries+1)*o.ReadTimeout+o.MaxRetryBackoff, 3*time.Second,
		"under the edge's usual call cap")

	ep, err = parseURL("redis://127.0.0.1:6379/0?read_timeout=5s&max_retries=-1&dial_timeout=10s")
	require.NoError(t, err)
	o = ep.withDefaults().single
	require.Equal(t, 5*time.Second, o.ReadTimeout, "the URL's choice stands")
	require.Equal(t, -1, o.MaxRetries)
	require.Equal(t, 10*time.Second, o.DialTimeout)

	ep, err = parseURL("redis+cluster://127.0.0.1:7000,127.0.0.1:7001")
	require.NoError(t, err)
	c := ep.withDefaults().cluster
	require.True(t, c.ContextTimeoutEnabled)
	require.Equal(t, defaultIOTimeout, c.ReadTimeout)
	require.Zero(t, c.MaxRetries, "left to go-redis: cluster nodes do not retry")

	ep, err = parseURL("redis+sentinel://127.0.0.1:26379/mymaster")
	require.NoError(t, err)
	f := ep.withDefaults().failover
	require.True(t, f.ContextTimeoutEnabled)
	require.Equal(t, defaultIOTimeout, f.ReadTimeout)
	require.Equal(t, defaultMaxRetries, f.MaxRetries)
}
