package redisclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// testRedisURL is the Redis server the tests use. Tests fail, never skip,
// when it does not answer.
func testRedisURL() string {
	if u := os.Getenv("BACKPLANE_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// testKey returns a key no other test uses and deletes it at cleanup, so
// tests can share one server and run in parallel.
func testKey(t *testing.T, client redis.UniversalClient) string {
	t.Helper()
	buf := make([]byte, 8)
	_, err := rand.Read(buf)
	require.NoError(t, err)
	key := "backplane_test:" + hex.EncodeToString(buf)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, client.Del(ctx, key).Err())
	})
	return key
}

func TestOpenSingleNodeRunsCommands(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	client, err := Open(ctx, testRedisURL())
	require.NoError(t, err, "the redisclient tests need Redis at %s (or BACKPLANE_TEST_REDIS_URL)", testRedisURL())
	t.Cleanup(func() { require.NoError(t, client.Close()) })
	require.IsType(t, &redis.Client{}, client)

	key := testKey(t, client)
	require.NoError(t, client.Set(ctx, key, "hello", time.Minute).Err())
	got, err := client.Get(ctx, key).Result()
	require.NoError(t, err)
	require.Equal(t, "hello", got)
}

func TestOpenErrorsNeverContainThePassword(t *testing.T) {
	t.Parallel()
	const password = "s3cret-Pa55"

	tests := []struct {
		name    string
		url     string
		wantErr string
	}{
		// The real server has no such user, so AUTH fails.
		{"rejected by the server", "redis://nosuchuser:" + password + "@127.0.0.1:6379/0", "ping 127.0.0.1:6379"},
		{"unreachable", "redis://:" + password + "@127.0.0.1:1/0?dial_timeout=1s&max_retries=-1", "ping 127.0.0.1:1"},
		{"bad port", "redis://:" + password + "@127.0.0.1:notaport/0", "parse URL"},
		{"bad escape", "redis://:" + password + "%zz@127.0.0.1/0", "parse URL"},
		{"unknown option", "redis://:" + password + "@127.0.0.1/0?colour=blue", "parse URL"},
		{"cluster bad escape", "redis+cluster://:" + password + "%zz@h1,h2", "parse URL"},
		{"cluster bad host", "redis+cluster://:" + password + "@h1:x,h2", "parse URL"},
		{"sentinel bad option", "redis+sentinel://:" + password + "@h1/m?sentinel_password=" + password + "&colour=blue", "parse URL"},
		{"sentinel password option", "redis+sentinel://127.0.0.1:1/m?password=" + password + "&dial_timeout=1s&max_retries=-1&dialer_retries=1", "ping sentinel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client, err := Open(t.Context(), tt.url)
			require.Nil(t, client)
			require.ErrorContains(t, err, tt.wantErr)
			require.NotContains(t, err.Error(), password)
		})
	}
}
