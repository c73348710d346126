package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// reportLines decodes the JSON lines logged so far and forgets them.
func reportLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec))
		out = append(out, rec)
	}
	buf.Reset()
	return out
}

func TestExportLogIsRateLimitedAndCounts(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := newExportLog(slog.New(slog.NewJSONHandler(&buf, nil)), "traces", "spans", "dropped_spans")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	down := errors.New("connection refused")

	l.failed(512, down)
	lines := reportLines(t, &buf)
	require.Len(t, lines, 1, "the first loss is told at once")
	require.Equal(t, "WARN", lines[0]["level"])
	require.Equal(t, "telemetry export failing, dropping data", lines[0]["msg"])
	require.Equal(t, "traces", lines[0]["signal"])
	require.EqualValues(t, 512, lines[0]["dropped_spans"])
	require.Equal(t, "connection refused", lines[0]["error"])

	for range 9 {
		now = now.Add(3 * time.Second)
		l.failed(100, down)
	}
	l.queueFull(7)
	require.Empty(t, reportLines(t, &buf), "27s later: still quiet")

	now = now.Add(3 * time.Second)
	l.failed(100, down)
	lines = reportLines(t, &buf)
	require.Len(t, lines, 1, "30s after the last line")
	require.EqualValues(t, 1007, lines[0]["dropped_spans"], "everything since the last line")

	now = now.Add(5 * time.Second)
	l.failed(50, down)
	now = now.Add(time.Second)
	l.succeeded()
	lines = reportLines(t, &buf)
	require.Len(t, lines, 1)
	require.Equal(t, "INFO", lines[0]["level"])
	require.Equal(t, "telemetry export recovered", lines[0]["msg"])
	require.Equal(t, "traces", lines[0]["signal"])
	require.EqualValues(t, 50, lines[0]["dropped_spans"])
	require.Equal(t, "36s", lines[0]["failing_for"])

	l.succeeded()
	require.Empty(t, reportLines(t, &buf), "one recovery line per outage")

	// A failure right after recovery is counted and told at the next allowed line,
	// or at shutdown, never lost.
	l.failed(3, down)
	l.succeeded()
	require.Empty(t, reportLines(t, &buf))
	l.close(4)
	lines = reportLines(t, &buf)
	require.Len(t, lines, 1)
	require.Equal(t, "telemetry data lost at shutdown", lines[0]["msg"])
	require.Equal(t, "traces", lines[0]["signal"])
	require.EqualValues(t, 7, lines[0]["dropped_spans"])
	l.close(0)
	require.Empty(t, reportLines(t, &buf), "nothing left to tell")
}

// heldProcessor is a span processor that keeps every span it is given, standing in
// for a batch processor whose exporter never returns.
type heldProcessor struct {
	held int
}

func (*heldProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (p *heldProcessor) OnEnd(sdktrace.ReadOnlySpan)                   { p.held++ }
func (*heldProcessor) ForceFlush(context.Context) error                { return nil }
func (*heldProcessor) Shutdown(context.Context) error                  { return nil }

func TestSpanQueueDropsAndCountsWhenFull(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := newExportLog(slog.New(slog.NewJSONHandler(&buf, nil)), "traces", "spans", "dropped_spans")
	next := &heldProcessor{}
	q := &spanQueue{SpanProcessor: next, limit: 4, log: log}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(q))
	tracer := tp.Tracer("test")

	for range 10 {
		_, s := tracer.Start(t.Context(), "work")
		s.End()
	}
	require.Equal(t, 4, next.held)
	require.EqualValues(t, 4, q.queued.Load())
	lines := reportLines(t, &buf)
	require.Len(t, lines, 1)
	require.EqualValues(t, 1, lines[0]["dropped_spans"], "the first drop is told at once")
	require.Equal(t, errQueueFull.Error(), lines[0]["error"])
	log.close(0)
	require.EqualValues(t, 5, reportLines(t, &buf)[0]["dropped_spans"], "the other five at shutdown")

	// An export takes spans off the queue and makes room.
	exp := &spanExporter{next: nopSpanExporter{}, queue: q, log: log}
	require.NoError(t, exp.ExportSpans(t.Context(), make([]sdktrace.ReadOnlySpan, 4)))
	require.Zero(t, q.queued.Load())
	require.Zero(t, exp.inFlight.Load())
}

type nopSpanExporter struct{}

func (nopSpanExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (nopSpanExporter) Shutdown(context.Context) error                             { return nil }

func TestDataPointsCountsEveryKind(t *testing.T) {
	t.Parallel()
	rm := &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{
		{Data: metricdata.Sum[int64]{DataPoints: make([]metricdata.DataPoint[int64], 2)}},
		{Data: metricdata.Gauge[float64]{DataPoints: make([]metricdata.DataPoint[float64], 1)}},
		{Data: metricdata.Histogram[float64]{DataPoints: make([]metricdata.HistogramDataPoint[float64], 3)}},
		{Data: metricdata.ExponentialHistogram[int64]{DataPoints: make([]metricdata.ExponentialHistogramDataPoint[int64], 1)}},
		{Data: metricdata.Summary{DataPoints: make([]metricdata.SummaryDataPoint, 1)}},
	}}}}
	require.Equal(t, 8, dataPoints(rm))
}

func TestFlushBudget(t *testing.T) {
	t.Parallel()
	for timeout, want := range map[time.Duration]time.Duration{
		0:                5 * time.Second,
		20 * time.Second: 5 * time.Second,
		8 * time.Second:  2 * time.Second,
		time.Second:      250 * time.Millisecond,
	} {
		require.Equal(t, want, FlushBudget(timeout), timeout)
	}
}

func TestSignalURL(t *testing.T) {
	t.Parallel()
	require.Equal(t, "http://c:4318/v1/traces", signalURL("http://c:4318", "/v1/traces"))
	require.Equal(t, "https://c/otlp/v1/metrics", signalURL("https://c/otlp/", "/v1/metrics"))
}
