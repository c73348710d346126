package telemetry

import (
	"go.opentelemetry.io/otel"
)

// SetGlobal installs the providers and propagator as OpenTelemetry's process-wide
// defaults, for libraries that can only read those. New never does this itself:
// globals are shared by every test in a binary and hide which code depends on them,
// so main calls SetGlobal once, deliberately.
//
// When Config.Logger is set, SetGlobal also routes the SDK's background errors (such
// as failed exports) to it; otherwise they keep going to the SDK's default, stderr.
func (t *Telemetry) SetGlobal() {
	otel.SetTracerProvider(t.tracerProvider)
	otel.SetMeterProvider(t.meterProvider)
	otel.SetTextMapPropagator(t.propagator)
	if t.logger != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			t.logger.Error("telemetry: opentelemetry", "error", err)
		}))
	}
}
