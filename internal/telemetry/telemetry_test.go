package telemetry_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/backplane/backplane/internal/telemetry"
)

// testBundle is what most tests need: a Telemetry without OTLP export and a recorder
// that sees every ended span.
type testBundle struct {
	tel   *telemetry.Telemetry
	spans *tracetest.SpanRecorder
}

func setup(t *testing.T) testBundle {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(t.Context(), telemetry.Config{
		ServiceName:    "telemetry-test",
		ServiceVersion: "v1.2.3",
		// Keep every new trace: the default ratio would make these tests flaky.
		Sampler:        sdktrace.ParentBased(sdktrace.AlwaysSample()),
		SpanProcessors: []sdktrace.SpanProcessor{spans},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, tel.Shutdown(ctx))
	})
	return testBundle{tel: tel, spans: spans}
}

// scrape returns the body MetricsHandler serves to a plain text client.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	return string(body)
}

func TestMetricsHandlerServesRecordedCounter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	counter, err := b.tel.MeterProvider().Meter("test").Int64Counter("backplane.test.requests")
	require.NoError(t, err)

	counter.Add(t.Context(), 3, metric.WithAttributes(attribute.String("route", "/v1/ping")))

	body := scrape(t, b.tel.MetricsHandler())
	require.Regexp(t, `backplane_test_requests_total\{[^}]*route="/v1/ping"[^}]*\} 3`, body)
	require.Contains(t, body, "go_goroutines")
	require.Contains(t, body, "process_")
	require.Regexp(t, `target_info\{[^}]*service_name="telemetry-test"`, body)
}

func TestRegistryIsPrivate(t *testing.T) {
	t.Parallel()
	first, second := setup(t), setup(t)
	require.NotSame(t, first.tel.Registry(), second.tel.Registry())
}

func TestTracerProviderRecordsSpans(t *testing.T) {
	t.Parallel()
	b := setup(t)

	_, span := b.tel.TracerProvider().Tracer("test").Start(t.Context(), "work")
	span.End()

	ended := b.spans.Ended()
	require.Len(t, ended, 1)
	require.Equal(t, "work", ended[0].Name())
	attrs := ended[0].Resource().Set()
	name, ok := attrs.Value(semconv.ServiceNameKey)
	require.True(t, ok)
	require.Equal(t, "telemetry-test", name.AsString())
	version, ok := attrs.Value(semconv.ServiceVersionKey)
	require.True(t, ok)
	require.Equal(t, "v1.2.3", version.AsString())
}

func TestParentBasedSamplerFollowsParent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tracer := b.tel.TracerProvider().Tracer("test")
	unsampled := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1},
		SpanID:  trace.SpanID{1},
		Remote:  true,
	})

	_, declined := tracer.Start(trace.ContextWithRemoteSpanContext(t.Context(), unsampled), "declined")
	declined.End()
	_, root := tracer.Start(t.Context(), "root")
	root.End()

	ended := b.spans.Ended()
	require.Len(t, ended, 1)
	require.Equal(t, "root", ended[0].Name())
}

func TestPropagatorCarriesTraceContextAndBaggage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, span := b.tel.TracerProvider().Tracer("test").Start(t.Context(), "outbound")
	defer span.End()
	member, err := baggage.NewMember("tenant", "acme")
	require.NoError(t, err)
	bag, err := baggage.New(member)
	require.NoError(t, err)
	ctx = baggage.ContextWithBaggage(ctx, bag)

	carrier := propagation.MapCarrier{}
	b.tel.Propagator().Inject(ctx, carrier)
	require.NotEmpty(t, carrier.Get("traceparent"))
	require.Equal(t, "tenant=acme", carrier.Get("baggage"))

	got := b.tel.Propagator().Extract(context.Background(), carrier)
	require.Equal(t, span.SpanContext().TraceID(), trace.SpanContextFromContext(got).TraceID())
	require.Equal(t, "acme", baggage.FromContext(got).Member("tenant").Value())
}

func TestShutdownIsClean(t *testing.T) {
	t.Parallel()
	tel, err := telemetry.New(t.Context(), telemetry.Config{ServiceName: "telemetry-test"})
	require.NoError(t, err)
	_, span := tel.TracerProvider().Tracer("test").Start(t.Context(), "work")
	span.End()

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, tel.Shutdown(ctx))
}

func TestUnreachableCollectorDoesNotBlock(t *testing.T) {
	t.Parallel()
	// Reserve a local port and free it, so that nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	tel, err := telemetry.New(t.Context(), telemetry.Config{
		ServiceName:  "telemetry-test",
		OTLPEndpoint: "http://" + addr,
	})
	require.NoError(t, err)
	_, span := tel.TracerProvider().Tracer("test").Start(t.Context(), "work")
	span.End()
	counter, err := tel.MeterProvider().Meter("test").Int64Counter("backplane.test.requests")
	require.NoError(t, err)
	counter.Add(t.Context(), 1)

	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	// The flush may fail; what matters is that it gives up when ctx does.
	_ = tel.Shutdown(ctx)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]telemetry.Config{
		"no service name": {},
		"blank service":   {ServiceName: "  "},
		"bad scheme":      {ServiceName: "s", OTLPEndpoint: "ftp://collector:4317"},
		"no host":         {ServiceName: "s", OTLPEndpoint: "http://"},
		"no port":         {ServiceName: "s", OTLPEndpoint: "collector"},
	} {
		_, err := telemetry.New(t.Context(), cfg)
		require.Error(t, err, name)
	}
}

func TestNewAcceptsEndpointForms(t *testing.T) {
	t.Parallel()
	for _, endpoint := range []string{"collector:4317", "http://collector:4317", "https://collector:4317"} {
		tel, err := telemetry.New(t.Context(), telemetry.Config{ServiceName: "s", OTLPEndpoint: endpoint})
		require.NoError(t, err, endpoint)
		// No collector runs at these addresses; give up on the final push at once.
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		_ = tel.Shutdown(ctx)
		cancel()
	}
}
