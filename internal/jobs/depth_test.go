package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/backplane/backplane/internal/jobs"
)

// depthSample is what the depth gauges said about one queue.
type depthSample struct {
	waiting, running, retrying int64
	oldestAge                  float64
}

// readDepthGauges collects the depth gauges from reader, by queue.
func readDepthGauges(t *testing.T, reader *sdkmetric.ManualReader) map[string]depthSample {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(t.Context(), &rm))
	out := map[string]depthSample{}
	queueOf := func(set attribute.Set) string {
		v, _ := set.Value("queue")
		return v.AsString()
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, p := range data.DataPoints {
					s := out[queueOf(p.Attributes)]
					switch m.Name {
					case "backplane.jobs.waiting":
						s.waiting = p.Value
					case "backplane.jobs.running":
						s.running = p.Value
					case "backplane.jobs.retrying":
						s.retrying = p.Value
					}
					out[queueOf(p.Attributes)] = s
				}
			case metricdata.Gauge[float64]:
				for _, p := range data.DataPoints {
					if m.Name == "backplane.jobs.oldest_waiting_age" {
						s := out[queueOf(p.Attributes)]
						s.oldestAge = p.Value
						out[queueOf(p.Attributes)] = s
					}
				}
			}
		}
	}
	return out
}

// depthClient is a client, not yet started, working the default queue and an idle one
// with one worker each, which work runs, and reading its queues' depth every 20 ms
// into the returned reader's gauges.
func depthClient(t *testing.T, work func(context.Context, *river.Job[shipArgs]) error) (*jobs.Client, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	return newClient(t, setup(t).pool, jobs.Config{
		Workers:       workFunc(work),
		Queues:        map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}, "idle": {MaxWorkers: 1}},
		DepthInterval: 20 * time.Millisecond,
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
	}), reader
}

// TestQueueDepthIsMeasured: a working client reports, per queue it works, how many jobs
// wait for a worker, how many run, and how long the oldest has waited; an idle queue
// reports zeros, and a stopped client reports nothing.
func TestQueueDepthIsMeasured(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	// One worker, held: one job runs, the others wait.
	client, reader := depthClient(t, func(ctx context.Context, _ *river.Job[shipArgs]) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	require.Empty(t, readDepthGauges(t, reader), "a client that does not work jobs reports no depth")
	require.NoError(t, client.Start(t.Context()))
	for i := range 3 {
		_, err := client.Insert(t.Context(), shipArgs{OrderID: int64(i)}, nil)
		require.NoError(t, err)
	}
	var got map[string]depthSample
	require.Eventually(t, func() bool {
		got = readDepthGauges(t, reader)
		return got[river.QueueDefault].waiting == 2 && got[river.QueueDefault].running == 1 && got[river.QueueDefault].oldestAge > 0
	}, 15*time.Second, 20*time.Millisecond, "depth: %+v", got)
	require.Equal(t, depthSample{}, got["idle"], "an idle queue reports zeros")

	close(release)
	require.Eventually(t, func() bool {
		got = readDepthGauges(t, reader)
		return got[river.QueueDefault] == depthSample{}
	}, 15*time.Second, 20*time.Millisecond, "the queue drained: %+v", got)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, client.Stop(ctx))
	require.Empty(t, readDepthGauges(t, reader), "a stopped client reports no depth")
}

// TestRetryingJobsAreCounted: a job that failed and waits out its backoff is counted as
// retrying in its queue, neither waiting nor running.
func TestRetryingJobsAreCounted(t *testing.T) {
	t.Parallel()
	client, reader := depthClient(t, func(context.Context, *river.Job[shipArgs]) error {
		return jobs.RetryAfter(errors.New("the carrier is down"), time.Hour)
	})
	require.NoError(t, client.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(ctx)
	})
	for i := range 2 {
		_, err := client.Insert(t.Context(), shipArgs{OrderID: int64(i)}, nil)
		require.NoError(t, err)
	}
	var got map[string]depthSample
	require.Eventually(t, func() bool {
		got = readDepthGauges(t, reader)
		return got[river.QueueDefault] == depthSample{retrying: 2}
	}, 15*time.Second, 20*time.Millisecond, "depth: %+v", got)
	require.Equal(t, depthSample{}, got["idle"])
}
