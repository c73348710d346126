// Package telemetry sets up OpenTelemetry tracing and metrics for one process.
//
// New builds a tracer provider, a meter provider and a W3C trace-context and baggage
// propagator that share one resource describing the service. Metrics are always
// served in Prometheus format from a registry owned by the Telemetry value, never the
// global default registry, so two instances in one test binary do not collide. When
// an OTLP endpoint is configured, spans and metrics are also pushed to it over gRPC.
//
// Nothing here touches OpenTelemetry's global providers unless the caller asks for it
// with SetGlobal: wiring code passes the providers to whatever needs them, and only
// libraries that can read nothing but the globals need SetGlobal.
package telemetry
