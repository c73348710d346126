package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/internal/otlptest"
	"github.com/backplane/backplane/internal/telemetry"
)

// remoteParent returns a context carrying an incoming span context, sampled or not.
func remoteParent(sampled bool) context.Context {
	cfg := trace.SpanContextConfig{TraceID: trace.TraceID{0xab, 1}, SpanID: trace.SpanID{0xcd, 1}, Remote: true}
	if sampled {
		cfg.TraceFlags = trace.FlagsSampled
	}
	return trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(cfg))
}

func TestWithoutExporterNothingIsRecordedButTraceIDsFlow(t *testing.T) {
	t.Parallel()
	tel := start(t, telemetry.Config{Pieces: []string{"gateway"}})
	tracer := tel.TracerProvider().Tracer("test")

	// A request without traceparent still gets a trace id, for the logs.
	ctx, root := tracer.Start(t.Context(), "root", trace.WithSpanKind(trace.SpanKindServer))
	require.False(t, root.IsRecording())
	require.True(t, root.SpanContext().IsValid())
	_, child := tracer.Start(ctx, "child")
	require.False(t, child.IsRecording())
	require.Equal(t, root.SpanContext().TraceID(), child.SpanContext().TraceID())

	var buf bytes.Buffer
	logging.New(&buf, logging.Options{}).InfoContext(ctx, "handled")
	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line))
	require.Equal(t, root.SpanContext().TraceID().String(), line["trace_id"])
	require.Equal(t, root.SpanContext().SpanID().String(), line["span_id"])

	// An incoming trace, even one its caller sampled, is continued without recording,
	// and its id goes on to the next hop.
	ctx, cont := tracer.Start(remoteParent(true), "continued", trace.WithSpanKind(trace.SpanKindServer))
	require.False(t, cont.IsRecording())
	require.Equal(t, trace.TraceID{0xab, 1}, cont.SpanContext().TraceID())
	carrier := propagation.MapCarrier{}
	tel.Propagator().Inject(ctx, carrier)
	require.Contains(t, carrier.Get("traceparent"), trace.TraceID{0xab, 1}.String())
}

func TestSamplerFromTheEnvironment(t *testing.T) {
	type outcome struct{ roots, sampledChild, unsampledChild bool }
	for _, tc := range []struct {
		sampler, arg string
		want         outcome
	}{
		{"always_on", "", outcome{roots: true, sampledChild: true, unsampledChild: true}},
		{"always_off", "", outcome{}},
		{"traceidratio", "0", outcome{}},
		{"traceidratio", "1", outcome{roots: true, sampledChild: true, unsampledChild: true}},
		{"parentbased_always_on", "", outcome{roots: true, sampledChild: true}},
		{"parentbased_always_off", "", outcome{sampledChild: true}},
		{"parentbased_traceidratio", "0", outcome{sampledChild: true}},
		{"parentbased_traceidratio", "", outcome{roots: true, sampledChild: true}},
		{"PARENTBASED_TRACEIDRATIO", "1.0", outcome{roots: true, sampledChild: true}},
	} {
		t.Run(tc.sampler+":"+tc.arg, func(t *testing.T) {
			t.Setenv("OTEL_TRACES_SAMPLER", tc.sampler)
			t.Setenv("OTEL_TRACES_SAMPLER_ARG", tc.arg)
			rec := tracetest.NewSpanRecorder()
			tel := start(t, telemetry.Config{Pieces: []string{"auth"}, SpanProcessors: []sdktrace.SpanProcessor{rec}})
			tracer := tel.TracerProvider().Tracer("test")

			recorded := 0
			for range 50 {
				_, s := tracer.Start(t.Context(), "root", trace.WithSpanKind(trace.SpanKindServer))
				if s.IsRecording() {
					recorded++
				}
				s.End()
			}
			if tc.want.roots {
				require.Equal(t, 50, recorded)
			} else {
				require.Zero(t, recorded)
			}
			_, s := tracer.Start(remoteParent(true), "sampled parent", trace.WithSpanKind(trace.SpanKindServer))
			require.Equal(t, tc.want.sampledChild, s.IsRecording())
			_, s = tracer.Start(remoteParent(false), "unsampled parent", trace.WithSpanKind(trace.SpanKindServer))
			require.Equal(t, tc.want.unsampledChild, s.IsRecording())
		})
	}
}

func TestDefaultSamplerIsParentBasedRatio(t *testing.T) {
	count := func(t *testing.T) (recorded int, followsParent bool) {
		t.Helper()
		rec := tracetest.NewSpanRecorder()
		tel := start(t, telemetry.Config{Pieces: []string{"auth"}, SpanProcessors: []sdktrace.SpanProcessor{rec}})
		tracer := tel.TracerProvider().Tracer("test")
		for range 2000 {
			_, s := tracer.Start(t.Context(), "root", trace.WithSpanKind(trace.SpanKindServer))
			if s.IsRecording() {
				recorded++
			}
		}
		_, sampled := tracer.Start(remoteParent(true), "child", trace.WithSpanKind(trace.SpanKindServer))
		_, unsampled := tracer.Start(remoteParent(false), "child", trace.WithSpanKind(trace.SpanKindServer))
		return recorded, sampled.IsRecording() && !unsampled.IsRecording()
	}
	t.Run("ratio 0.1", func(t *testing.T) {
		recorded, follows := count(t)
		// Binomial(2000, 0.1): mean 200, standard deviation about 13.
		require.InDelta(t, 2000*telemetry.DefaultSampleRatio, recorded, 100)
		require.True(t, follows)
	})
	t.Run("OTEL_TRACES_SAMPLER_ARG applies to the default", func(t *testing.T) {
		t.Setenv("OTEL_TRACES_SAMPLER_ARG", "1")
		recorded, follows := count(t)
		require.Equal(t, 2000, recorded)
		require.True(t, follows)
	})
}

func TestBadSamplerSettingsStopTheStart(t *testing.T) {
	for _, env := range []map[string]string{
		{"OTEL_TRACES_SAMPLER": "jaeger_remote"},
		{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
		{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"},
		{"OTEL_TRACES_SAMPLER_ARG": "-0.1"},
	} {
		t.Run(env["OTEL_TRACES_SAMPLER"]+env["OTEL_TRACES_SAMPLER_ARG"], func(t *testing.T) {
			for k, v := range env {
				t.Setenv(k, v)
			}
			_, err := telemetry.New(t.Context(), telemetry.Config{Pieces: []string{"auth"}})
			require.ErrorContains(t, err, "OTEL_TRACES_SAMPLER")
		})
	}
}

func TestHousekeepingIsNeverRecorded(t *testing.T) {
	t.Parallel()
	cfg, rec := recording("auth")
	tel := start(t, cfg)
	tracer := tel.TracerProvider().Tracer("test")

	t.Run("a context marked WithoutTracing", func(t *testing.T) {
		ctx := telemetry.WithoutTracing(t.Context())
		ctx, s := tracer.Start(ctx, "readyz", trace.WithSpanKind(trace.SpanKindServer))
		require.False(t, s.IsRecording())
		require.True(t, s.SpanContext().IsValid(), "logs still get a trace id")
		_, c := tracer.Start(ctx, "PING", trace.WithSpanKind(trace.SpanKindClient))
		require.False(t, c.IsRecording())
		// Even under a parent that was sampled upstream.
		_, s = tracer.Start(telemetry.WithoutTracing(remoteParent(true)), "scrape", trace.WithSpanKind(trace.SpanKindServer))
		require.False(t, s.IsRecording())
	})
	t.Run("an outgoing call outside any trace", func(t *testing.T) {
		_, c := tracer.Start(t.Context(), "GET session", trace.WithSpanKind(trace.SpanKindClient))
		require.False(t, c.IsRecording())
	})
	t.Run("an outgoing call inside a request is recorded", func(t *testing.T) {
		ctx, s := tracer.Start(t.Context(), "request", trace.WithSpanKind(trace.SpanKindServer))
		require.True(t, s.IsRecording())
		_, c := tracer.Start(ctx, "GET session", trace.WithSpanKind(trace.SpanKindClient))
		require.True(t, c.IsRecording())
	})
	t.Run("WithTracing starts afresh", func(t *testing.T) {
		ctx, poll := tracer.Start(telemetry.WithoutTracing(t.Context()), "poll")
		require.False(t, poll.IsRecording())
		_, job := tracer.Start(telemetry.WithTracing(ctx), "job", trace.WithSpanKind(trace.SpanKindConsumer))
		require.True(t, job.IsRecording())
		require.NotEqual(t, poll.SpanContext().TraceID(), job.SpanContext().TraceID())
		plain := t.Context()
		require.Equal(t, plain, telemetry.WithTracing(plain), "an unmarked context is left alone")
	})
	require.Empty(t, rec.Ended(), "nothing above ended a span")
}

func TestRatioZeroExportsNoSpans(t *testing.T) {
	t.Setenv("OTEL_TRACES_SAMPLER", "traceidratio")
	t.Setenv("OTEL_TRACES_SAMPLER_ARG", "0")
	r := otlptest.Start(t)
	tel := start(t, telemetry.Config{Pieces: []string{"gateway", "auth"}, OTLPEndpoint: r.GRPCEndpoint()})
	for _, name := range []string{"gateway", "auth"} {
		piece, err := tel.Piece(name)
		require.NoError(t, err)
		tracer := piece.TracerProvider().Tracer("test")
		for range 100 {
			ctx, s := tracer.Start(t.Context(), "GET /v1/users/me", trace.WithSpanKind(trace.SpanKindServer))
			_, c := tracer.Start(ctx, "SELECT", trace.WithSpanKind(trace.SpanKindClient))
			c.End()
			s.End()
		}
		// A parent sampled upstream is not followed either: traceidratio is not
		// parent-based.
		_, s := tracer.Start(remoteParent(true), "continued", trace.WithSpanKind(trace.SpanKindServer))
		s.End()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, tel.ForceFlush(ctx))
	require.NoError(t, tel.Shutdown(ctx))
	// The pipeline was alive: metrics reached the same receiver.
	require.NotEmpty(t, r.Points())
	require.Empty(t, r.Spans())
}
