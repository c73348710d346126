package database

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestOneSpanPerQueryAndPoolsNamedBySchema(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := Migrate(t.Context(), b.pool, "widgets", widgetMigrations(t))
	require.NoError(t, err)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))

	pool, err := Open(t.Context(), b.url, WithSchema("widgets"), WithTracerProvider(tp), WithMeterProvider(mp))
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	// Outside any trace, a query (such as a poller's) starts none.
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM widgets").Scan(&n))
	require.Empty(t, spans.Ended())

	// Inside a request, a first-time query is prepared and run on a pooled
	// connection: one span, not three.
	ctx, request := tp.Tracer("test").Start(t.Context(), "request", trace.WithSpanKind(trace.SpanKindServer))
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM widgets WHERE id > $1", 0).Scan(&n))
	request.End()
	var names []string
	for _, s := range spans.Ended() {
		names = append(names, s.Name())
	}
	require.Equal(t, []string{"SELECT", "request"}, names)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(t.Context(), &rm))
	pools := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "pgxpool.max_connections" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
				v, _ := dp.Attributes.Value(attribute.Key("db.client.connection.pool.name"))
				pools[v.AsString()] = true
			}
		}
	}
	require.Equal(t, map[string]bool{"widgets": true}, pools)
}
