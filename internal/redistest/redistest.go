// Package redistest connects tests to the real Redis server. It never skips: a test that
// cannot reach Redis fails, because CI always has one. Tests share the server, so keys
// must be unique per test (they carry random ids); nothing here flushes data.
package redistest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// URL is the test server: BACKPLANE_TEST_REDIS_URL, or the local server every Backplane
// machine runs.
func URL() string {
	if u := os.Getenv("BACKPLANE_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Client returns a client of the test server, closed when the test ends.
func Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	opts, err := redis.ParseURL(URL())
	if err != nil {
		t.Fatalf("redistest: parse %s: %v", URL(), err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("redistest: Redis is required for this test and did not answer at %s: %v", opts.Addr, err)
	}
	return client
}
