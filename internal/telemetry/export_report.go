package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// reportEvery is the least time between two warnings about one signal's losses.
const reportEvery = 30 * time.Second

// errQueueFull is the reason given for spans dropped because the exporter could not
// keep up: the queue in front of it was full.
var errQueueFull = errors.New("export queue full")

// exportLog tells the operator what one signal loses while its exports fail: a WARN
// line at the first loss and then at most one per reportEvery, each with the count
// lost since the previous line, and one INFO line when exports succeed again. The SDK
// would otherwise log every failed batch, without saying what it lost.
type exportLog struct {
	logger *slog.Logger
	// signal names the signal in the lines ("traces", "metrics"); unit names what is
	// counted ("spans", "data points") and key the attribute that carries the count.
	signal, unit, key string
	every             time.Duration
	now               func() time.Time

	mu sync.Mutex
	// dropped counts what was lost since the last line.
	dropped int64
	// lastWarn is when the last WARN line was written.
	lastWarn time.Time
	// failing is set by a failed export and cleared by a successful one; announced
	// is set while a WARN line has told of a failure not yet followed by recovery.
	failing, announced bool
	since              time.Time
}

func newExportLog(logger *slog.Logger, signal, unit, key string) *exportLog {
	return &exportLog{logger: logger, signal: signal, unit: unit, key: key, every: reportEvery, now: time.Now}
}

// failed records an export of n items that did not reach the collector.
func (l *exportLog) failed(n int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.failing {
		l.failing, l.since = true, l.now()
	}
	l.lose(n, err)
}

// queueFull records n items dropped before export because the queue was full.
func (l *exportLog) queueFull(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lose(n, errQueueFull)
}

// lose counts n lost items and writes a WARN line unless one was written less than
// every ago. l.mu is held.
func (l *exportLog) lose(n int, err error) {
	l.dropped += int64(n)
	now := l.now()
	if !l.lastWarn.IsZero() && now.Sub(l.lastWarn) < l.every {
		return
	}
	if l.logger != nil {
		l.logger.Warn("telemetry export failing, dropping data",
			"signal", l.signal, l.key, l.dropped, "error", err.Error(), "next_report_after", l.every.String())
	}
	l.dropped, l.lastWarn = 0, now
	if l.failing {
		l.announced = true
	}
}

// succeeded records an export that reached the collector.
func (l *exportLog) succeeded() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.failing {
		return
	}
	l.failing = false
	if !l.announced {
		return
	}
	l.announced = false
	if l.logger != nil {
		l.logger.Info("telemetry export recovered",
			"signal", l.signal, l.key, l.dropped, "failing_for", l.now().Sub(l.since).Round(time.Millisecond).String())
	}
	l.dropped = 0
}

// close writes what was lost since the last line, if anything, whatever the rate
// limit: it is the process's last word on the signal. extra counts items that never
// reached the exporter (still queued when the flush gave up).
func (l *exportLog) close(extra int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropped += extra
	if l.dropped == 0 || l.logger == nil {
		return
	}
	l.logger.Warn("telemetry data lost at shutdown", "signal", l.signal, l.key, l.dropped)
	l.dropped = 0
}

// spanQueue sits in front of the batch span processor and keeps count of the spans
// handed to it that have not reached the exporter yet. It drops a span itself, and
// counts it, when that number reaches the batch processor's queue size: the batch
// processor would otherwise drop it silently, and a collector that is down for a
// minute loses far more spans to the full queue than to failed exports.
type spanQueue struct {
	sdktrace.SpanProcessor
	limit  int64
	queued atomic.Int64
	log    *exportLog
}

// OnEnd implements sdktrace.SpanProcessor.
func (q *spanQueue) OnEnd(s sdktrace.ReadOnlySpan) {
	// Only sampled spans are exported; the batch processor ignores the rest.
	if !s.SpanContext().IsSampled() {
		return
	}
	if q.queued.Add(1) > q.limit {
		q.queued.Add(-1)
		q.log.queueFull(1)
		return
	}
	q.SpanProcessor.OnEnd(s)
}

// spanExporter reports the outcome of every export to its log. It returns nil
// whatever happens: the failure is reported, and an error would make the SDK log it
// once more, unthrottled.
type spanExporter struct {
	next  sdktrace.SpanExporter
	queue *spanQueue
	log   *exportLog
	// inFlight counts spans in exports that have not returned: lost, if the process
	// exits before they do.
	inFlight atomic.Int64
}

// ExportSpans implements sdktrace.SpanExporter.
func (e *spanExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	n := int64(len(spans))
	e.inFlight.Add(n)
	defer e.inFlight.Add(-n)
	e.queue.queued.Add(-n)
	if err := e.next.ExportSpans(ctx, spans); err != nil {
		e.log.failed(len(spans), err)
		return nil
	}
	e.log.succeeded()
	return nil
}

// Shutdown implements sdktrace.SpanExporter.
func (e *spanExporter) Shutdown(ctx context.Context) error { return e.next.Shutdown(ctx) }

// metricExporter reports the outcome of every export to its log, as spanExporter
// does. One is shared by the periodic readers of every piece, so its Shutdown does
// nothing: Telemetry shuts the real exporter down once, after every reader is done.
type metricExporter struct {
	sdkmetric.Exporter
	log *exportLog
	// inFlight counts data points in exports that have not returned.
	inFlight atomic.Int64
}

// Export implements sdkmetric.Exporter.
func (e *metricExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	n := dataPoints(rm)
	e.inFlight.Add(int64(n))
	defer e.inFlight.Add(-int64(n))
	if err := e.Exporter.Export(ctx, rm); err != nil {
		e.log.failed(n, err)
		return nil
	}
	e.log.succeeded()
	return nil
}

// Shutdown implements sdkmetric.Exporter.
func (*metricExporter) Shutdown(context.Context) error { return nil }

// dataPoints counts the data points in rm.
func dataPoints(rm *metricdata.ResourceMetrics) int {
	n := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				n += len(d.DataPoints)
			case metricdata.Gauge[float64]:
				n += len(d.DataPoints)
			case metricdata.Sum[int64]:
				n += len(d.DataPoints)
			case metricdata.Sum[float64]:
				n += len(d.DataPoints)
			case metricdata.Histogram[int64]:
				n += len(d.DataPoints)
			case metricdata.Histogram[float64]:
				n += len(d.DataPoints)
			case metricdata.ExponentialHistogram[int64]:
				n += len(d.DataPoints)
			case metricdata.ExponentialHistogram[float64]:
				n += len(d.DataPoints)
			case metricdata.Summary:
				n += len(d.DataPoints)
			}
		}
	}
	return n
}

// sharedProcessor lets one span processor serve the tracer provider of every piece:
// each provider shuts its processors down with it, so this one ignores that, and
// Telemetry shuts the real processor down once.
type sharedProcessor struct {
	sdktrace.SpanProcessor
}

// Shutdown implements sdktrace.SpanProcessor.
func (sharedProcessor) Shutdown(context.Context) error { return nil }
