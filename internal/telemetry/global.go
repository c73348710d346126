package telemetry

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
)

// SetGlobal installs the process's own providers (see TracerProvider) and the
// propagator as OpenTelemetry's process-wide defaults, for libraries that can only
// read those. New never does this itself: globals are shared by every test in a
// binary and hide which code depends on them, so main calls SetGlobal once,
// deliberately.
//
// When Config.Logger is set, SetGlobal also routes the SDK's background errors to it;
// otherwise they keep going to the SDK's default, stderr. Export failures are not
// among them: they are counted and logged at most every 30s per signal.
func (t *Telemetry) SetGlobal() {
	otel.SetTracerProvider(t.TracerProvider())
	otel.SetMeterProvider(t.MeterProvider())
	otel.SetTextMapPropagator(t.propagator)
	if t.logger != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			// Shutdown cancels the periodic readers, and one caught mid-collection
			// reports the cancellation: an artefact of stopping, not a failure.
			if t.stopping.Load() && errors.Is(err, context.Canceled) {
				return
			}
			t.logger.Error("telemetry: opentelemetry", "error", err)
		}))
	}
}
