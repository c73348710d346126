package otlptest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/backplane/backplane/internal/otlptest"
)

// exportSpans sends a parent, a child linking to another trace, and nothing else,
// through exp, for service "svc".
func exportSpans(t *testing.T, exp sdktrace.SpanExporter) (parent, child trace.SpanContext, linked trace.SpanContext) {
	t.Helper()
	rec := &collect{}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("svc"))),
		sdktrace.WithSyncer(rec),
	)
	tracer := tp.Tracer("otlptest-scope")
	linked = trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{9}, TraceFlags: trace.FlagsSampled})
	ctx, ps := tracer.Start(t.Context(), "parent", trace.WithSpanKind(trace.SpanKindServer))
	_, cs := tracer.Start(ctx, "child", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(trace.Link{SpanContext: linked}),
		trace.WithAttributes(attribute.String("http.route", "/v1/x/{id}"), attribute.Int("n", 3), attribute.StringSlice("l", []string{"a", "b"})))
	cs.End()
	ps.End()
	require.NoError(t, exp.ExportSpans(t.Context(), rec.spans))
	return ps.SpanContext(), cs.SpanContext(), linked
}

// collect is a span exporter that keeps what it is given, to hand it on to the
// exporter under test in one call.
type collect struct{ spans []sdktrace.ReadOnlySpan }

func (c *collect) ExportSpans(_ context.Context, s []sdktrace.ReadOnlySpan) error {
	c.spans = append(c.spans, s...)
	return nil
}
func (*collect) Shutdown(context.Context) error { return nil }

func TestReceiverTakesSpansOverBothProtocols(t *testing.T) {
	t.Parallel()
	r := otlptest.Start(t)
	for _, tc := range []struct {
		protocol string
		exporter func() (sdktrace.SpanExporter, error)
	}{
		{otlptest.ProtocolGRPC, func() (sdktrace.SpanExporter, error) {
			return otlptracegrpc.New(t.Context(), otlptracegrpc.WithEndpointURL(r.GRPCEndpoint()), otlptracegrpc.WithCompressor("gzip"))
		}},
		{otlptest.ProtocolHTTPProtobuf, func() (sdktrace.SpanExporter, error) {
			return otlptracehttp.New(t.Context(), otlptracehttp.WithEndpointURL(r.HTTPEndpoint()+"/v1/traces"),
				otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		}},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			r.Reset()
			exp, err := tc.exporter()
			require.NoError(t, err)
			defer func() { require.NoError(t, exp.Shutdown(context.Background())) }()

			parent, child, linked := exportSpans(t, exp)

			spans := r.Spans()
			require.Len(t, spans, 2)
			byName := map[string]otlptest.Span{}
			for _, s := range spans {
				require.Equal(t, tc.protocol, s.Protocol)
				require.Equal(t, "svc", s.Service)
				require.Equal(t, "otlptest-scope", s.Scope)
				byName[s.Name] = s
			}
			c, p := byName["child"], byName["parent"]
			require.Equal(t, child.TraceID().String(), c.TraceID)
			require.Equal(t, child.SpanID().String(), c.SpanID)
			require.Equal(t, parent.SpanID().String(), c.ParentSpanID)
			require.Equal(t, "client", c.Kind)
			require.Equal(t, "server", p.Kind)
			require.Equal(t, "/v1/x/{id}", c.Attributes["http.route"])
			require.Equal(t, "3", c.Attributes["n"])
			require.Equal(t, "a,b", c.Attributes["l"])
			require.Equal(t, []otlptest.SpanRef{{TraceID: linked.TraceID().String(), SpanID: linked.SpanID().String()}}, c.Links)
			require.False(t, c.End.Before(c.Start))
			require.Equal(t, 1, r.Requests())
		})
	}
}

func TestReceiverTakesMetricsOverBothProtocols(t *testing.T) {
	t.Parallel()
	r := otlptest.Start(t)
	for _, tc := range []struct {
		protocol string
		exporter func() (sdkmetric.Exporter, error)
	}{
		{otlptest.ProtocolGRPC, func() (sdkmetric.Exporter, error) {
			return otlpmetricgrpc.New(t.Context(), otlpmetricgrpc.WithEndpointURL(r.GRPCEndpoint()))
		}},
		{otlptest.ProtocolHTTPProtobuf, func() (sdkmetric.Exporter, error) {
			return otlpmetrichttp.New(t.Context(), otlpmetrichttp.WithEndpointURL(r.HTTPEndpoint()+"/v1/metrics"),
				otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
		}},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			r.Reset()
			exp, err := tc.exporter()
			require.NoError(t, err)
			mp := sdkmetric.NewMeterProvider(
				sdkmetric.WithResource(resource.NewSchemaless(semconv.ServiceName("svc"))),
				sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)),
			)
			defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
			meter := mp.Meter("otlptest-scope")
			counter, err := meter.Int64Counter("jobs", metric.WithUnit("{job}"))
			require.NoError(t, err)
			hist, err := meter.Float64Histogram("latency", metric.WithUnit("s"))
			require.NoError(t, err)

			counter.Add(t.Context(), 2, metric.WithAttributes(attribute.String("kind", "a")))
			hist.Record(t.Context(), 0.5)
			hist.Record(t.Context(), 1.5)
			require.NoError(t, mp.ForceFlush(t.Context()))
			counter.Add(t.Context(), 3, metric.WithAttributes(attribute.String("kind", "a")))
			require.NoError(t, mp.ForceFlush(t.Context()))

			require.Len(t, r.Points(), 4, "two exports of two series")
			last := otlptest.LastPoints(r.Points())
			require.Len(t, last, 2)
			for _, p := range last {
				require.Equal(t, tc.protocol, p.Protocol)
				require.Equal(t, "svc", p.Service)
				switch p.Metric {
				case "jobs":
					require.InDelta(t, 5.0, p.Value, 1e-9)
					require.Equal(t, "a", p.Attributes["kind"])
					require.Equal(t, "{job}", p.Unit)
				case "latency":
					require.Equal(t, uint64(2), p.Count)
					require.InDelta(t, 2.0, p.Value, 1e-9)
				default:
					t.Fatalf("unexpected metric %q", p.Metric)
				}
			}
		})
	}
}

func TestReceiverFailsWhenToldAndWhenClosed(t *testing.T) {
	t.Parallel()
	r := otlptest.Start(t)
	noRetry := otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false})
	grpcExp, err := otlptracegrpc.New(t.Context(), otlptracegrpc.WithEndpointURL(r.GRPCEndpoint()), noRetry,
		otlptracegrpc.WithTimeout(2*time.Second))
	require.NoError(t, err)
	defer func() { _ = grpcExp.Shutdown(context.Background()) }()
	httpExp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpointURL(r.HTTPEndpoint()+"/v1/traces"),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}), otlptracehttp.WithTimeout(2*time.Second))
	require.NoError(t, err)
	var span sdktrace.ReadOnlySpan
	{
		rec := &collect{}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(rec))
		_, s := tp.Tracer("t").Start(t.Context(), "s")
		s.End()
		span = rec.spans[0]
	}

	r.SetFailing(true)
	err = grpcExp.ExportSpans(t.Context(), []sdktrace.ReadOnlySpan{span})
	require.ErrorContains(t, err, "Unavailable")
	err = httpExp.ExportSpans(t.Context(), []sdktrace.ReadOnlySpan{span})
	require.ErrorContains(t, err, "retry-able request failure")
	require.Empty(t, r.Spans())
	require.Zero(t, r.Requests())

	r.SetFailing(false)
	require.NoError(t, grpcExp.ExportSpans(t.Context(), []sdktrace.ReadOnlySpan{span}))
	require.NoError(t, httpExp.ExportSpans(t.Context(), []sdktrace.ReadOnlySpan{span}))
	require.Len(t, r.Spans(), 2)

	r.Close()
	r.Close() // twice is fine
	require.Error(t, httpExp.ExportSpans(t.Context(), []sdktrace.ReadOnlySpan{span}))
	require.Error(t, grpcExp.ExportSpans(t.Context(), []sdktrace.ReadOnlySpan{span}))
}

func TestReceiverWait(t *testing.T) {
	t.Parallel()
	r := otlptest.Start(t)
	exp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpointURL(r.HTTPEndpoint()+"/v1/traces"))
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		done <- r.Wait(ctx, func(spans []otlptest.Span, _ []otlptest.Point) bool { return len(spans) >= 2 })
	}()
	exportSpans(t, exp)
	require.NoError(t, <-done)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err = r.Wait(ctx, func(spans []otlptest.Span, _ []otlptest.Point) bool { return len(spans) > 2 })
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestReceiverRefusesOtherEncodings(t *testing.T) {
	t.Parallel()
	r := otlptest.Start(t)
	for _, h := range []map[string]string{
		{"Content-Type": "application/json"},
		{"Content-Type": "application/x-protobuf", "Content-Encoding": "br"},
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, r.HTTPEndpoint()+"/v1/traces", strings.NewReader("{}"))
		require.NoError(t, err)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode, h)
	}
	require.Zero(t, r.Requests())
}
