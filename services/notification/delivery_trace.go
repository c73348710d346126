package notification

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/backplane/backplane/internal/service"
)

// The delivery's steps each have a span, children of the job's attempt, which
// internal/jobs places in the trace of the request that sent the notification: one
// trace shows a sign-up through the email leaving. The address lookup is the gRPC
// client span of AuthService/LookupUser, and the queries have their own spans beneath
// these.
const (
	spanClaim    = "notification.email.claim"
	spanSend     = "notification.email.send"
	spanMarkSent = "notification.email.mark_sent"
)

// tracerOf returns the tracer of the delivery's spans.
func tracerOf(deps service.Deps) trace.Tracer {
	tp := deps.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer("github.com/backplane/backplane/services/notification")
}

// step starts the span of one delivery step; the caller ends it with endStep.
//
//nolint:spancheck // the span is returned to be ended by the caller
func (d *deliverer) step(ctx context.Context, name string, attempt int) (context.Context, trace.Span) {
	return d.tracer.Start(ctx, name, trace.WithAttributes(attribute.Int("backplane.notification.attempt", attempt)))
}

// endStep ends a step's span, marking it failed when err is not nil. The cause goes to
// the log, not the span: a provider's answer may quote the address.
func endStep(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, "failed")
	}
	span.End()
}
