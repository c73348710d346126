package jobs_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/backplane/backplane/internal/jobs"
)

// A job inserted inside a traced request carries the request's W3C trace context in its
// metadata, and the span of its work links back to the span that inserted it, a child of
// the request's span.
func TestTraceContextTravelsWithTheJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	workTraceID := make(chan string, 1)
	client := startClient(t, b.pool, jobs.Config{
		TracerProvider: tp,
		Workers: workFunc(func(ctx context.Context, _ *river.Job[shipArgs]) error {
			workTraceID <- trace.SpanContextFromContext(ctx).TraceID().String()
			return nil
		}),
	})

	ctx, request := tp.Tracer("test").Start(t.Context(), "PlaceOrder")
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	res, err := client.InsertTx(ctx, tx, shipArgs{OrderID: 1}, nil)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	request.End()
	requestSC := request.SpanContext()

	job := waitForState(t, client, res.Job.ID, rivertype.JobStateCompleted)
	var metadata struct {
		Traceparent string `json:"traceparent"`
	}
	require.NoError(t, json.Unmarshal(job.Metadata, &metadata))
	require.Contains(t, metadata.Traceparent, "-"+requestSC.TraceID().String()+"-", "W3C trace context in the job")

	var insert, work tracetest.SpanStub
	require.Eventually(t, func() bool {
		for _, s := range spans.GetSpans() {
			switch {
			case s.Name == "river.insert_many":
				insert = s
			case strings.HasPrefix(s.Name, "river.work/"):
				work = s
			}
		}
		return insert.Name != "" && work.Name != ""
	}, 5*time.Second, 10*time.Millisecond)

	require.Equal(t, requestSC.SpanID(), insert.Parent.SpanID(), "the insert is part of the request")
	require.Equal(t, "river.work/order_ship", work.Name)
	require.Len(t, work.Links, 1)
	require.Equal(t, requestSC.TraceID(), work.Links[0].SpanContext.TraceID())
	require.Equal(t, insert.SpanContext.SpanID(), work.Links[0].SpanContext.SpanID())
	require.Equal(t, work.SpanContext.TraceID().String(), <-workTraceID, "the worker runs inside the work span")
}
