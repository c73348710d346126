package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/backplane/backplane/internal/redistest"
)

// The benchmarks compare decisions per second with go-redis/redis_rate, the
// common GCRA-in-Redis library, on the same server and the same limit. The
// limit is generous, so every decision writes (the costlier path), and each
// parallel goroutine has its own key, as callers do at the edge.
const benchKeys = 1024

var benchLimit = Limit{Rate: 1_000_000, Period: time.Hour, Burst: 1_000_000}

// BenchmarkAllow is the Limiter the edge uses, metrics included.
func BenchmarkAllow(b *testing.B) { benchAllow(b, false) }

// BenchmarkAllowLeased is BenchmarkAllow with leases on: most decisions are
// spent from a lease, one in twenty-one asks Redis.
func BenchmarkAllowLeased(b *testing.B) { benchAllow(b, true) }

func benchAllow(b *testing.B, lease bool) {
	client := redistest.Client(b)
	limiter, err := New(Config{
		Redis:         client,
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())),
		Logger:        slog.New(slog.DiscardHandler),
		Lease:         lease,
	})
	if err != nil {
		b.Fatal(err)
	}
	keys := benchKeyNames(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			req := Request{Key: keys[i%benchKeys], Limit: benchLimit, Policy: PolicyAuthenticated, Cost: 1}
			if _, err := limiter.Allow(ctx, req); err != nil {
				b.Error(err)
				return
			}
			i += 7
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// BenchmarkRedisAllow is the Redis limiter alone, without the Limiter's
// bookkeeping, to tell the script's cost from the metrics'.
func BenchmarkRedisAllow(b *testing.B) {
	r := NewRedis(redistest.Client(b))
	keys := benchKeyNames(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := r.Allow(ctx, keys[i%benchKeys], benchLimit, 1); err != nil {
				b.Error(err)
				return
			}
			i += 7
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// BenchmarkRedisRateBaseline is redis_rate's Allow on the same terms.
func BenchmarkRedisRateBaseline(b *testing.B) {
	limiter := redis_rate.NewLimiter(redistest.Client(b))
	limit := redis_rate.Limit{Rate: benchLimit.Rate, Period: benchLimit.Period, Burst: benchLimit.Burst}
	keys := benchKeyNames(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := limiter.Allow(ctx, keys[i%benchKeys], limit); err != nil {
				b.Error(err)
				return
			}
			i += 7
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// benchKeyNames are keys unique to this run, so that runs sharing the
// server do not spend one another's budgets.
func benchKeyNames(b *testing.B) []string {
	prefix := testKey(b)
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s:%d", prefix, i)
	}
	return keys
}
