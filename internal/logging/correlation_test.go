package logging_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/internal/requestid"
)

// spanContext returns ctx carrying a fixed, valid remote span context, as a tracing
// interceptor would leave it.
func spanContext(t *testing.T) (context.Context, trace.SpanContext) {
	t.Helper()
	traceID, err := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	require.NoError(t, err)
	spanID, err := trace.SpanIDFromHex("00f067aa0ba902b7")
	require.NoError(t, err)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    traceID,
		SpanID:     spanID,
		TraceFlags: trace.FlagsSampled,
	})
	return trace.ContextWithSpanContext(context.Background(), sc), sc
}

func TestCorrelationIDsAppearInOutput(t *testing.T) {
	t.Parallel()
	ctx, sc := spanContext(t)
	ctx = requestid.NewContext(ctx, "req-42")
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{})

	log.InfoContext(ctx, "handled", "status", 200)

	got := decodeOne(t, &buf)
	require.Equal(t, sc.TraceID().String(), got["trace_id"])
	require.Equal(t, sc.SpanID().String(), got["span_id"])
	require.Equal(t, "req-42", got["request_id"])
	require.InDelta(t, 200, got["status"], 0)
}

func TestCorrelationIDsStayTopLevelInsideGroups(t *testing.T) {
	t.Parallel()
	ctx, sc := spanContext(t)
	ctx = requestid.NewContext(ctx, "req-7")
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{}).
		With("service", "billing").
		WithGroup("http").
		With("method", "GET").
		WithGroup("response")

	log.InfoContext(ctx, "done", "status", 200)

	got := decodeOne(t, &buf)
	require.Equal(t, sc.TraceID().String(), got["trace_id"])
	require.Equal(t, sc.SpanID().String(), got["span_id"])
	require.Equal(t, "req-7", got["request_id"])
	require.Equal(t, "billing", got["service"])
	httpGroup := group(t, got, "http")
	require.Equal(t, "GET", httpGroup["method"])
	require.NotContains(t, httpGroup, "trace_id")
	response := group(t, httpGroup, "response")
	require.InDelta(t, 200, response["status"], 0)
}

func TestCorrelationSiblingLoggersDoNotShareGroups(t *testing.T) {
	t.Parallel()
	ctx, _ := spanContext(t)
	var buf bytes.Buffer
	parent := logging.New(&buf, logging.Options{}).WithGroup("a")
	left := parent.With("side", "left")
	right := parent.WithGroup("b")

	left.InfoContext(ctx, "l")
	right.InfoContext(ctx, "r", "k", "v")

	lines := decodeLines(t, &buf)
	require.Len(t, lines, 2)
	require.Equal(t, map[string]any{"side": "left"}, lines[0]["a"])
	require.Equal(t, map[string]any{"b": map[string]any{"k": "v"}}, lines[1]["a"])
}

func TestCorrelationOmittedWithoutIDs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{}).WithGroup("g")

	log.InfoContext(context.Background(), "plain", "k", "v")

	got := decodeOne(t, &buf)
	require.NotContains(t, got, "trace_id")
	require.NotContains(t, got, "span_id")
	require.NotContains(t, got, "request_id")
	require.Equal(t, map[string]any{"k": "v"}, got["g"])
}
