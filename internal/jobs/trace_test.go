package jobs_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/telemetry"
)

// traceBundle is a client whose spans are recorded by Backplane's telemetry (with its
// housekeeping rules) under sampler, and whose worker reports the span context it ran in.
type traceBundle struct {
	*testBundle
	client  *jobs.Client
	tracer  trace.Tracer
	spans   *tracetest.SpanRecorder
	workCtx chan trace.SpanContext
}

func setupTracing(t *testing.T, sampler sdktrace.Sampler) *traceBundle {
	t.Helper()
	b := &traceBundle{testBundle: setup(t), spans: tracetest.NewSpanRecorder(), workCtx: make(chan trace.SpanContext, 1)}
	tel, err := telemetry.New(t.Context(), telemetry.Config{
		Pieces:         []string{service},
		Sampler:        sampler,
		SpanProcessors: []sdktrace.SpanProcessor{b.spans},
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	piece, err := tel.Piece(service)
	require.NoError(t, err)
	b.tracer = piece.TracerProvider().Tracer("test")
	b.client = startClient(t, b.pool, jobs.Config{
		TracerProvider: piece.TracerProvider(),
		Workers: workFunc(func(ctx context.Context, _ *river.Job[shipArgs]) error {
			// What the worker does in its context (a query, a call) is part of the
			// job's trace.
			_, span := b.tracer.Start(ctx, "ship")
			span.End()
			b.workCtx <- span.SpanContext()
			return nil
		}),
	})
	return b
}

// insertInRequest inserts a job inside a request's span, committed, and returns the
// request's span context once the job has completed.
func (b *traceBundle) insertInRequest(t *testing.T) (trace.SpanContext, *rivertype.JobRow) {
	t.Helper()
	ctx, request := b.tracer.Start(t.Context(), "PlaceOrder", trace.WithSpanKind(trace.SpanKindServer))
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	res, err := b.client.InsertTx(ctx, tx, shipArgs{OrderID: 1}, nil)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	request.End()
	return request.SpanContext(), waitForState(t, b.client, res.Job.ID, rivertype.JobStateCompleted)
}

// spanNamed returns the one recorded span named name, failing if there is not exactly
// one.
func (b *traceBundle) spanNamed(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range b.spans.Ended() {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	require.Len(t, found, 1, "spans named %s", name)
	return found[0]
}

// A job inserted inside a traced request carries the request's W3C trace context in its
// metadata, and the span of its work is a child of the span that inserted it, itself a
// child of the request's span: one trace from the request to the work's last call.
func TestTheJobContinuesTheTraceOfItsRequest(t *testing.T) {
	t.Parallel()
	b := setupTracing(t, sdktrace.AlwaysSample())
	request, job := b.insertInRequest(t)

	var metadata struct {
		Traceparent string `json:"traceparent"`
	}
	require.NoError(t, json.Unmarshal(job.Metadata, &metadata))
	require.Contains(t, metadata.Traceparent, "-"+request.TraceID().String()+"-", "W3C trace context in the job")

	// The work span ended before River recorded the job completed.
	insert := b.spanNamed(t, "river.insert_many")
	work := b.spanNamed(t, "river.work/order_ship")
	ship := b.spanNamed(t, "ship")
	require.Equal(t, request.SpanID(), insert.Parent().SpanID(), "the insert is part of the request")
	require.Equal(t, request.TraceID(), work.SpanContext().TraceID(), "the work is in the request's trace")
	require.Equal(t, insert.SpanContext().SpanID(), work.Parent().SpanID(), "the work is a child of the insert")
	require.Equal(t, trace.SpanKindConsumer, work.SpanKind())
	require.Equal(t, work.SpanContext().SpanID(), ship.Parent().SpanID(), "the worker runs inside the work span")
	require.Equal(t, ship.SpanContext(), <-b.workCtx)
}

// A request that was not sampled has its job's work left unrecorded too, while the
// work keeps the request's trace id for its logs.
func TestTheJobOfAnUnsampledRequestIsNotRecorded(t *testing.T) {
	t.Parallel()
	b := setupTracing(t, sdktrace.ParentBased(sdktrace.NeverSample()))
	request, _ := b.insertInRequest(t)

	work := <-b.workCtx
	require.Equal(t, request.TraceID(), work.TraceID(), "the work's logs carry the request's trace id")
	require.False(t, work.IsSampled())
	require.Empty(t, b.spans.Ended())
}

// A job inserted outside any request, as River's leader inserts periodic jobs, is
// housekeeping: neither its insert nor its work is traced, even under a sampler that
// keeps everything.
func TestAJobInsertedOutsideARequestIsNotTraced(t *testing.T) {
	t.Parallel()
	b := setupTracing(t, sdktrace.AlwaysSample())
	res, err := b.client.Insert(t.Context(), shipArgs{OrderID: 2}, nil)
	require.NoError(t, err)
	waitForState(t, b.client, res.Job.ID, rivertype.JobStateCompleted)

	require.False(t, (<-b.workCtx).IsSampled())
	require.Empty(t, b.spans.Ended(), "no span of the insert nor the work")
}
