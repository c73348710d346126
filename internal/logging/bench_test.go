package logging

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/backplane/backplane/internal/requestid"
)

// BenchmarkAccessLine measures the line every call writes, for the allocations the
// handler adds to it (-benchmem).
func BenchmarkAccessLine(b *testing.B) {
	log := New(io.Discard, Options{})
	ctx := requestid.NewContext(context.Background(), "0891e744ad244f8d9e6804349b5696f4")
	tid, _ := trace.TraceIDFromHex("c8f4176c5c560b27114a66a10a83d4be")
	sid, _ := trace.SpanIDFromHex("650085ef537dd5c7")
	ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: 0}))
	log = log.With(slog.String("grpc.service", "backplane.auth.v1.AuthService"),
		slog.String("grpc.method", "GetCurrentUser"))
	b.ReportAllocs()
	for b.Loop() {
		log.LogAttrs(ctx, slog.LevelInfo, "finished call",
			slog.String("grpc.code", "OK"),
			slog.String("grpc.time_ms", "1.234"),
		)
	}
}
