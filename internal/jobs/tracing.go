package jobs

import (
	"context"
	"encoding/json"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/riverqueue/rivercontrib/otelriver"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/backplane/backplane/internal/telemetry"
)

// Every job carries the trace of the request that caused it. otelriver does the
// storing: with trace propagation on, the W3C context of its insert span rides in the
// job's metadata (traceparent, tracestate). But it starts the span of each attempt as
// a new trace with a link back, so a sign-up's trace ended at the insert and the
// delivery was a trace of its own. traceContext, a plugin running around otelriver's,
// makes one trace of them: the stored context becomes the parent of the attempt's
// span, so the attempt, its queries and its calls to other services are children of
// the insert, in the request's trace, and recorded exactly when the request was
// sampled (an unsampled request's job still carries its trace id, for the logs).
//
// A job inserted outside any request (a periodic job, inserted by River's leader on
// its schedule) is housekeeping: neither its insert nor its attempts are traced,
// whatever the sampler.
//
// An attempt may run long after the request, and several times; each is a child of
// the insert, which makes a long trace, but one that shows why the work ran and how it
// ended. The link otelriver adds besides points at the same span.

// traceKeys are the metadata keys otelriver stores the W3C trace context under.
var traceKeys = []string{"traceparent", "tracestate"}

// tracePlugins returns River's plugins for tracing and metrics, outermost first.
func tracePlugins(tp trace.TracerProvider, mp metric.MeterProvider) []rivertype.Plugin {
	return []rivertype.Plugin{
		&traceContext{},
		otelriver.NewMiddleware(&otelriver.MiddlewareConfig{
			EnableTracePropagation:      true,
			EnableWorkSpanJobKindSuffix: true,
			TracerProvider:              tp,
			MeterProvider:               mp,
		}),
	}
}

// traceContext runs around otelriver's middleware; see above.
type traceContext struct {
	river.PluginDefaults
}

var (
	_ rivertype.JobInsertMiddleware = (*traceContext)(nil)
	_ rivertype.WorkerMiddleware    = (*traceContext)(nil)
)

// InsertMany implements rivertype.JobInsertMiddleware: an insert made outside any
// trace is not traced.
func (*traceContext) InsertMany(ctx context.Context, _ []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = telemetry.WithoutTracing(ctx)
	}
	return doInner(ctx)
}

// Work implements rivertype.WorkerMiddleware: the attempt continues the trace stored
// with the job, recorded when that trace was sampled; with none stored, it is not
// traced.
func (*traceContext) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	ctx = withStoredTrace(telemetry.WithTracing(ctx), job.Metadata)
	if !trace.SpanContextFromContext(ctx).IsSampled() {
		ctx = telemetry.WithoutTracing(ctx)
	}
	return doInner(ctx)
}

// withStoredTrace returns ctx continuing the trace stored in a job's metadata, or ctx
// itself when none is stored or the metadata cannot be read.
func withStoredTrace(ctx context.Context, metadata []byte) context.Context {
	if len(metadata) == 0 {
		return ctx
	}
	var meta map[string]any
	if err := json.Unmarshal(metadata, &meta); err != nil {
		return ctx
	}
	carrier := propagation.MapCarrier{}
	for _, k := range traceKeys {
		if s, ok := meta[k].(string); ok {
			carrier[k] = s
		}
	}
	return propagation.TraceContext{}.Extract(ctx, carrier)
}
