package password

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// A hash starved on its lowered thread, and so computed again, is counted on
// backplane.auth.password.restarts; one that is not starved is not.
func TestStarvedHashesAreCounted(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	h, err := NewHasher(t.Context(), Params{Memory: 1024, Time: 1, Threads: 1}, 1,
		WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	require.NoError(t, err)
	restarts := func() int64 {
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(context.Background(), &rm))
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name == "backplane.auth.password.restarts" {
					sum, ok := m.Data.(metricdata.Sum[int64])
					require.True(t, ok)
					var n int64
					for _, dp := range sum.DataPoints {
						n += dp.Value
					}
					return n
				}
			}
		}
		return 0
	}
	// The hash NewHasher computes may itself have been starved on a busy machine.
	before := restarts()

	h.workers.starved = neverFed()
	encoded, err := h.Hash(t.Context(), "correct horse battery")
	require.NoError(t, err)
	require.Equal(t, before+1, restarts())

	// Always well fed: judged and never restarted.
	h.workers.starved = &starvation{after: time.Hour, now: time.Now, cpu: threadCPU}
	ok, err := h.Verify(t.Context(), "correct horse battery", encoded)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, before+1, restarts())
}
