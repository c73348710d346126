package telemetry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"

	"github.com/backplane/backplane/internal/telemetry"
)

// TestSetGlobal is not parallel: it replaces OpenTelemetry's process-wide state, which
// is exactly why New leaves that to an explicit call.
func TestSetGlobal(t *testing.T) {
	var logs bytes.Buffer
	tel, err := telemetry.New(t.Context(), telemetry.Config{
		ServiceName: "telemetry-test",
		Logger:      slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	require.NoError(t, err)
	// t.Context is already canceled when cleanups run.
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })

	tel.SetGlobal()

	require.Same(t, tel.TracerProvider(), otel.GetTracerProvider())
	require.Same(t, tel.MeterProvider(), otel.GetMeterProvider())
	require.Equal(t, tel.Propagator(), otel.GetTextMapPropagator())
	otel.Handle(errors.New("export failed"))
	require.Contains(t, logs.String(), "export failed")
}

// TestSetGlobalQuietensShutdownCancellation is not parallel: it replaces
// OpenTelemetry's process-wide error handler.
func TestSetGlobalQuietensShutdownCancellation(t *testing.T) {
	var logs bytes.Buffer
	tel, err := telemetry.New(t.Context(), telemetry.Config{
		ServiceName: "telemetry-test",
		Logger:      slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	require.NoError(t, err)
	tel.SetGlobal()

	otel.Handle(context.Canceled)
	require.Contains(t, logs.String(), "context canceled", "before shutdown it is news")
	logs.Reset()
	require.NoError(t, tel.Shutdown(context.Background()))
	otel.Handle(fmt.Errorf("collect: %w", context.Canceled))
	require.Empty(t, logs.String())
	otel.Handle(errors.New("duplicate instrument"))
	require.Contains(t, logs.String(), "duplicate instrument")
}
