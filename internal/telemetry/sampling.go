package telemetry

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// DefaultSampleRatio is the share of new traces kept when OTEL_TRACES_SAMPLER is unset
// and an exporter is configured: parentbased_traceidratio at 0.1. A trace started
// upstream keeps its caller's decision. Set OTEL_TRACES_SAMPLER_ARG=1 to keep every
// trace (the argument applies to this default too).
const DefaultSampleRatio = 0.1

// samplerFromEnv reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG as the
// specification defines them, with parentbased_traceidratio at DefaultSampleRatio
// when the sampler is unset. The SDK reads the same variables, but only when it is
// given no sampler, and Backplane wraps the configured one (see noiseSampler).
//
// A bad value stops the start instead of falling back to a default as the
// specification suggests: every other setting is validated at start-up, and a
// sampler silently keeping 100% of traces is an expensive surprise.
func samplerFromEnv() (sdktrace.Sampler, string, error) {
	name := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER")))
	arg := strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := func(def float64) (float64, error) {
		if arg == "" {
			return def, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("telemetry: OTEL_TRACES_SAMPLER_ARG=%q: want a ratio from 0 to 1", arg)
		}
		return r, nil
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), name, nil
	case "always_off":
		return sdktrace.NeverSample(), name, nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), name, nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), name, nil
	case "traceidratio":
		// The specification's default argument for the named ratio samplers is 1.0.
		r, err := ratio(1)
		return sdktrace.TraceIDRatioBased(r), describeRatio(name, r), err
	case "parentbased_traceidratio":
		r, err := ratio(1)
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), describeRatio(name, r), err
	case "":
		r, err := ratio(DefaultSampleRatio)
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), describeRatio("parentbased_traceidratio", r), err
	default:
		return nil, "", fmt.Errorf("telemetry: OTEL_TRACES_SAMPLER=%q: want always_on, always_off, traceidratio, "+
			"parentbased_always_on, parentbased_always_off or parentbased_traceidratio", name)
	}
}

func describeRatio(name string, ratio float64) string {
	return name + ":" + strconv.FormatFloat(ratio, 'g', -1, 64)
}

// noiseSampler keeps background work out of traces, whatever the configured sampler
// would decide:
//
//   - a context marked with WithoutTracing records nothing: health and readiness
//     checks, scrapes, and the loops a process runs on its own;
//   - a client span with no parent (a Redis command, a gRPC call or a query made by a
//     poller outside any request) is not recorded either: traces begin where work
//     enters the system, at a server span, a job's consumer span or a span started
//     deliberately by our code, never at an outgoing call.
//
// Everything else goes to the configured sampler. A span that is not recorded still
// has a trace id, which reaches the logs and the next hop's traceparent.
type noiseSampler struct {
	next sdktrace.Sampler
}

// ShouldSample implements sdktrace.Sampler.
func (s noiseSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	parent := trace.SpanContextFromContext(p.ParentContext)
	if untraced(p.ParentContext) || (!parent.IsValid() && p.Kind == trace.SpanKindClient) {
		return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: parent.TraceState()}
	}
	return s.next.ShouldSample(p)
}

// Description implements sdktrace.Sampler.
func (s noiseSampler) Description() string {
	return "BackplaneNoise{" + s.next.Description() + "}"
}

// untracedKey marks a context whose spans are never recorded.
type untracedKey struct{}

// WithoutTracing returns a context under which no span is recorded, whichever
// sampler is configured; spans started under it still carry a trace id, for log
// correlation. Run housekeeping under it: loops the process runs on its own (the
// session mirror, pollers), health and readiness checks, scrapes. WithTracing undoes
// it, for work that starts under such a context but deserves its own trace, such as
// a job picked up by a poller.
func WithoutTracing(ctx context.Context) context.Context {
	return context.WithValue(ctx, untracedKey{}, true)
}

// WithTracing returns ctx with the mark WithoutTracing left removed, and without the
// unrecorded span started under it, whose decision a parent-based sampler would
// otherwise inherit: what starts under the result is a new trace, or continues one
// extracted into it afterwards (a job's stored trace context).
func WithTracing(ctx context.Context) context.Context {
	if !untraced(ctx) {
		return ctx
	}
	ctx = context.WithValue(ctx, untracedKey{}, false)
	return trace.ContextWithSpanContext(ctx, trace.SpanContext{})
}

func untraced(ctx context.Context) bool {
	v, _ := ctx.Value(untracedKey{}).(bool)
	return v
}
