package telemetry_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/backplane/backplane/internal/otlptest"
	"github.com/backplane/backplane/internal/telemetry"
)

// produce starts a server span with a client child and adds to a counter in each
// named piece.
func produce(t *testing.T, tel *telemetry.Telemetry, pieces ...string) {
	t.Helper()
	for _, name := range pieces {
		piece, err := tel.Piece(name)
		require.NoError(t, err)
		ctx, s := piece.TracerProvider().Tracer("test").Start(t.Context(), "handle", trace.WithSpanKind(trace.SpanKindServer))
		_, c := piece.TracerProvider().Tracer("test").Start(ctx, "call", trace.WithSpanKind(trace.SpanKindClient))
		c.End()
		s.End()
		counter, err := piece.MeterProvider().Meter("test").Int64Counter("backplane.test.calls")
		require.NoError(t, err)
		counter.Add(t.Context(), 1, metric.WithAttributes(attribute.String("piece", name)))
	}
}

// flush pushes what tel holds and waits until r has what cond wants.
func flush(t *testing.T, tel *telemetry.Telemetry, r *otlptest.Receiver, cond func([]otlptest.Span, []otlptest.Point) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	require.NoError(t, tel.ForceFlush(ctx))
	require.NoError(t, r.Wait(ctx, cond))
}

func services(spans []otlptest.Span) []string {
	var out []string
	for _, s := range spans {
		if !slices.Contains(out, s.Service) {
			out = append(out, s.Service)
		}
	}
	slices.Sort(out)
	return out
}

func pointsOf(points []otlptest.Point, metric string) []otlptest.Point {
	var out []otlptest.Point
	for _, p := range otlptest.LastPoints(points) {
		if p.Metric == metric {
			out = append(out, p)
		}
	}
	return out
}

func TestExportOverEitherProtocol(t *testing.T) {
	for _, protocol := range []string{"", otlptest.ProtocolGRPC, otlptest.ProtocolHTTPProtobuf} {
		t.Run("protocol="+protocol, func(t *testing.T) {
			r := otlptest.Start(t)
			endpoint, want := r.GRPCEndpoint(), otlptest.ProtocolGRPC
			if protocol == otlptest.ProtocolHTTPProtobuf {
				endpoint, want = r.HTTPEndpoint(), otlptest.ProtocolHTTPProtobuf
			}
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
			t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on")
			tel := start(t, telemetry.Config{Pieces: []string{"gateway", "auth"}, ServiceVersion: "v1.0.0"})

			produce(t, tel, "gateway", "auth")
			flush(t, tel, r, func(spans []otlptest.Span, points []otlptest.Point) bool {
				return len(spans) == 4 && len(pointsOf(points, "backplane.test.calls")) == 2 &&
					len(pointsOf(points, "go.goroutine.count")) > 0
			})

			spans := r.Spans()
			require.Equal(t, []string{"backplane-auth", "backplane-gateway"}, services(spans))
			for _, s := range spans {
				require.Equal(t, want, s.Protocol)
				require.Equal(t, "backplane", s.Resource["service.namespace"])
				require.Equal(t, "v1.0.0", s.Resource["service.version"])
			}
			for _, p := range pointsOf(r.Points(), "backplane.test.calls") {
				require.Equal(t, want, p.Protocol)
				require.Equal(t, "backplane-"+p.Attributes["piece"], p.Service)
			}
			// The Go runtime and the process report over OTLP too, under the
			// process's own name.
			for _, name := range []string{"go.goroutine.count", "go.memory.used", "process.cpu.time", "process.uptime",
				"process.memory.usage", "process.unix.file_descriptor.count"} {
				points := pointsOf(r.Points(), name)
				require.NotEmpty(t, points, name)
				require.Equal(t, "backplane", points[0].Service, name)
			}
		})
	}
}

func TestPerSignalEndpointsAndProtocols(t *testing.T) {
	traces, metrics := otlptest.Start(t), otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1") // outranked by both below
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces.HTTPEndpoint()+"/v1/traces")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", metrics.GRPCEndpoint())
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	tel := start(t, telemetry.Config{Pieces: []string{"auth"}})

	produce(t, tel, "auth")
	flush(t, tel, traces, func(spans []otlptest.Span, _ []otlptest.Point) bool { return len(spans) == 2 })
	flush(t, tel, metrics, func(_ []otlptest.Span, points []otlptest.Point) bool {
		return len(pointsOf(points, "backplane.test.calls")) == 1
	})
	require.Equal(t, otlptest.ProtocolHTTPProtobuf, traces.Spans()[0].Protocol)
	require.Empty(t, traces.Points())
	require.Equal(t, otlptest.ProtocolGRPC, metrics.Points()[0].Protocol)
	require.Empty(t, metrics.Spans())
}

func TestConfiguredEndpointIsABaseURL(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	r := otlptest.Start(t)
	cfg, _ := recording("auth")
	cfg.SpanProcessors = nil
	cfg.OTLPEndpoint = r.HTTPEndpoint()
	tel := start(t, cfg)

	produce(t, tel, "auth")
	flush(t, tel, r, func(spans []otlptest.Span, points []otlptest.Point) bool {
		return len(spans) == 2 && len(pointsOf(points, "backplane.test.calls")) == 1
	})
}

func TestExporterSwitchedOffByName(t *testing.T) {
	r := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", r.GRPCEndpoint())
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	t.Setenv("OTEL_METRICS_EXPORTER", "prometheus,otlp")
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	tel := start(t, telemetry.Config{Pieces: []string{"auth"}})

	piece, err := tel.Piece("auth")
	require.NoError(t, err)
	_, s := piece.TracerProvider().Tracer("test").Start(t.Context(), "handle", trace.WithSpanKind(trace.SpanKindServer))
	require.False(t, s.IsRecording(), "no span exporter, so nothing is recorded")
	s.End()
	produce(t, tel, "auth")
	flush(t, tel, r, func(_ []otlptest.Span, points []otlptest.Point) bool {
		return len(pointsOf(points, "backplane.test.calls")) == 1
	})
	require.Empty(t, r.Spans())
}

func TestBadExportSettingsStopTheStart(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"http/json":          {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
		"per-signal":         {"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "udp"},
		"bare endpoint":      {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"},
		"bad scheme":         {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://collector:4317"},
		"zipkin":             {"OTEL_TRACES_EXPORTER": "zipkin"},
		"console":            {"OTEL_METRICS_EXPORTER": "otlp,console"},
		"resource attribute": {"OTEL_RESOURCE_ATTRIBUTES": "team"},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range env {
				t.Setenv(k, v)
			}
			_, err := telemetry.New(t.Context(), telemetry.Config{Pieces: []string{"auth"}})
			require.Error(t, err)
		})
	}
}

// closedPort returns an address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func TestCollectorDownIsReportedThenRecovery(t *testing.T) {
	// Exporters retry until their timeout; keep each failed export short.
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "300")
	r := otlptest.Start(t)
	r.SetFailing(true)
	logs, logger := newLogSink()
	cfg, _ := recording("gateway", "auth")
	cfg.SpanProcessors, cfg.OTLPEndpoint, cfg.Logger = nil, r.GRPCEndpoint(), logger
	tel := start(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	produce(t, tel, "gateway", "auth") // 4 spans
	require.NoError(t, tel.ForceFlush(ctx))
	warns := logs.signalLines(t, "telemetry export failing", "traces")
	require.Len(t, warns, 1)
	require.Equal(t, "WARN", warns[0]["level"])
	require.EqualValues(t, 4, warns[0]["dropped_spans"])
	require.Contains(t, warns[0]["error"], "Unavailable")
	metricWarns := logs.signalLines(t, "telemetry export failing", "metrics")
	require.Len(t, metricWarns, 1)
	require.Positive(t, metricWarns[0]["dropped_points"])

	produce(t, tel, "auth") // 2 more, inside the 30s: counted, not logged
	require.NoError(t, tel.ForceFlush(ctx))
	require.Len(t, logs.signalLines(t, "telemetry export failing", "traces"), 1)
	require.Len(t, logs.signalLines(t, "telemetry export failing", "metrics"), 1)
	require.Empty(t, logs.lines(t, "telemetry: opentelemetry"), "the SDK does not log each failure besides")

	r.SetFailing(false)
	produce(t, tel, "auth")
	require.NoError(t, tel.ForceFlush(ctx))
	recovered := logs.signalLines(t, "telemetry export recovered", "traces")
	require.Len(t, recovered, 1)
	require.Equal(t, "INFO", recovered[0]["level"])
	require.EqualValues(t, 2, recovered[0]["dropped_spans"], "lost since the last line")
	require.Len(t, logs.signalLines(t, "telemetry export recovered", "metrics"), 1)
	require.Len(t, r.Spans(), 2, "the spans after recovery arrived")
}

func TestShutdownKeepsToItsBudgetWithNoCollector(t *testing.T) {
	for _, protocol := range []string{otlptest.ProtocolGRPC, otlptest.ProtocolHTTPProtobuf} {
		t.Run(protocol, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
			logs, logger := newLogSink()
			cfg, _ := recording("gateway", "auth", "notification")
			cfg.SpanProcessors, cfg.Logger = nil, logger
			cfg.OTLPEndpoint = "http://" + closedPort(t)
			// A quarter of 2s: 500ms, where the exporters alone would retry for 10s.
			cfg.ShutdownTimeout = 2 * time.Second
			tel, err := telemetry.New(t.Context(), cfg)
			require.NoError(t, err)
			produce(t, tel, "gateway", "auth", "notification")

			began := time.Now()
			err = tel.Shutdown(context.Background())
			require.Less(t, time.Since(began), 1500*time.Millisecond)
			require.Equal(t, err, tel.Shutdown(context.Background()), "a second call returns the first result")
			// Whether the export failed within the budget (connection refused over
			// HTTP fails at once) or was still retrying when it ran out (gRPC), every
			// span is accounted for.
			dropped := 0.0
			for _, line := range append(logs.signalLines(t, "telemetry export failing", "traces"),
				logs.signalLines(t, "telemetry data lost at shutdown", "traces")...) {
				dropped += line["dropped_spans"].(float64)
			}
			require.InDelta(t, 6, dropped, 0)
		})
	}
}

func TestShutdownFlushesToALiveCollector(t *testing.T) {
	t.Parallel()
	r := otlptest.Start(t)
	cfg, _ := recording("gateway", "auth")
	cfg.SpanProcessors, cfg.OTLPEndpoint = nil, r.GRPCEndpoint()
	tel, err := telemetry.New(t.Context(), cfg)
	require.NoError(t, err)
	produce(t, tel, "gateway", "auth")

	require.NoError(t, tel.Shutdown(t.Context()))
	require.Len(t, r.Spans(), 4)
	require.Len(t, pointsOf(r.Points(), "backplane.test.calls"), 2)
	// Spans ended after shutdown go nowhere.
	piece, err := tel.Piece("auth")
	require.NoError(t, err)
	_, s := piece.TracerProvider().Tracer("test").Start(t.Context(), "late", trace.WithSpanKind(trace.SpanKindServer))
	s.End()
	require.Len(t, r.Spans(), 4)
}

// With an exporter configured, the pieces' providers say they record, and spans reach
// the collector; with none, they say they do not, so that instrumentation whose only
// product is spans (Redis commands') can be left out, and the spans that carry trace
// context are started but never recorded.
func TestRecordsSpansOnlyWithSomewhereToSendThem(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	quiet := start(t, telemetry.Config{Pieces: []string{"auth"}})
	auth, err := quiet.Piece("auth")
	require.NoError(t, err)
	require.False(t, telemetry.RecordsSpans(auth.TracerProvider()))
	_, span := auth.TracerProvider().Tracer("test").Start(t.Context(), "call", trace.WithSpanKind(trace.SpanKindServer))
	require.False(t, span.IsRecording())
	require.True(t, span.SpanContext().IsValid(), "a trace id still reaches the logs and the next hop")
	span.End()
	require.False(t, telemetry.RecordsSpans(noop.NewTracerProvider()))

	r := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", r.GRPCEndpoint())
	tel := start(t, telemetry.Config{Pieces: []string{"auth"}})
	auth, err = tel.Piece("auth")
	require.NoError(t, err)
	require.True(t, telemetry.RecordsSpans(auth.TracerProvider()))
	require.True(t, telemetry.RecordsSpans(tel.TracerProvider()))
	// The default sampler keeps a share of new traces; a trace its caller sampled is
	// always kept.
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{7}, SpanID: trace.SpanID{7}, TraceFlags: trace.FlagsSampled, Remote: true})
	_, span = auth.TracerProvider().Tracer("test").Start(trace.ContextWithRemoteSpanContext(t.Context(), parent), "call",
		trace.WithSpanKind(trace.SpanKindServer))
	require.True(t, span.IsRecording())
	span.End()
	flush(t, tel, r, func(spans []otlptest.Span, _ []otlptest.Point) bool { return len(spans) == 1 })
	require.Equal(t, "call", r.Spans()[0].Name)
}
