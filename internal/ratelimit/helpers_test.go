package ratelimit

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// testKey is a key no other test, nor another run sharing the Redis server,
// uses.
func testKey(t testing.TB) string {
	return fmt.Sprintf("test:%s:%016x", t.Name(), rand.Uint64())
}

// perHour is a limit slow enough that no unit refills while a test runs, so
// that decisions do not depend on how fast the machine is.
func perHour(rate, burst int) Limit {
	return Limit{Rate: rate, Period: time.Hour, Burst: burst}
}

// fakeClock is a settable clock for Local and Limiter.
type fakeClock struct{ t time.Time }

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

// newTestScript is our script with a unique comment appended, so that its
// SHA1 is one no Redis server has seen.
func newTestScript(t testing.TB) *redis.Script {
	return redis.NewScript(fmt.Sprintf("%s\n-- %s %016x\n", gcraScript, t.Name(), rand.Uint64()))
}
