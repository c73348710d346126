package redisclient

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestStartEmbeddedAnswersCommands(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url, stop, err := StartEmbedded()
	require.NoError(t, err)
	t.Cleanup(stop)

	client, err := Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Close()) })

	require.NoError(t, client.Set(ctx, "greeting", "hello", 0).Err())
	got, err := client.Get(ctx, "greeting").Result()
	require.NoError(t, err)
	require.Equal(t, "hello", got)

	// Keys expire with the clock, as they do in Redis.
	require.NoError(t, client.Set(ctx, "short-lived", "x", 50*time.Millisecond).Err())
	require.Eventually(t, func() bool {
		return errors.Is(client.Get(ctx, "short-lived").Err(), redis.Nil)
	}, 5*time.Second, 20*time.Millisecond)
}

func TestStartEmbeddedStops(t *testing.T) {
	t.Parallel()
	url, stop, err := StartEmbedded()
	require.NoError(t, err)
	stop()

	_, err = Open(t.Context(), url+"?dial_timeout=1s&max_retries=-1")
	require.Error(t, err)
}
