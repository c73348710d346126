package notification

import (
	"testing"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
)

// An attempt's steps (claiming the email, sending it, recording it sent) are spans,
// children of the attempt's own span (River's work span, in the trace of the request
// that sent the notification), in that order.
func TestDeliveryStepsAreSpansOfTheAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	b.server.deliverer.tracer = tp.Tracer("test")

	id := b.send(t, &notificationv1.SendRequest{Recipient: &notificationv1.SendRequest_UserId{UserId: uuid.NewString()}})
	ctx, work := tp.Tracer("test").Start(t.Context(), "river.work/notification_email")
	job := &river.Job[emailArgs]{JobRow: &rivertype.JobRow{Attempt: 1, MaxAttempts: 5}, Args: emailArgs{NotificationID: id}}
	require.NoError(t, b.server.deliverer.deliver(ctx, job))
	work.End()
	require.Equal(t, statusSent, b.email(t, id).Status)

	var names []string
	for _, s := range spans.Ended() {
		if s.Name() == "river.work/notification_email" {
			continue
		}
		names = append(names, s.Name())
		require.Equal(t, work.SpanContext().SpanID(), s.Parent().SpanID(), "%s is a step of the attempt", s.Name())
		require.Equal(t, work.SpanContext().TraceID(), s.SpanContext().TraceID())
	}
	require.Equal(t, []string{spanClaim, spanSend, spanMarkSent}, names)
}
