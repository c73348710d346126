// Package telemetry sets up OpenTelemetry tracing and metrics for one process and
// each piece of Backplane it hosts.
//
// New builds, for every piece named in Config.Pieces (gateway, auth, …), a tracer
// provider and a meter provider reporting as service.name "backplane-<piece>", with
// service.namespace, service.instance.id and service.version; see identity for how
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES apply when one process hosts several
// pieces. The pieces share one set of exporters: one batch span processor and one
// OTLP metric exporter, speaking gRPC or HTTP/protobuf as OTEL_EXPORTER_OTLP_PROTOCOL
// says, and one Prometheus registry, where each series carries its piece's
// service_name. Go runtime and process metrics go over OTLP too.
//
// Spans cost nothing when no exporter is configured: nothing is recorded, while trace
// ids still propagate and reach the logs. With an exporter, OTEL_TRACES_SAMPLER
// decides, parent-based 10% by default, and housekeeping (contexts marked with
// WithoutTracing, outgoing calls made outside any trace) is never recorded. Export
// failures are logged at most once per 30s per signal with what was lost, and the
// final flush keeps to a short budget, so a dead collector never holds up shutdown.
//
// Nothing here touches OpenTelemetry's global providers unless the caller asks for it
// with SetGlobal: wiring code passes the providers to whatever needs them, and only
// libraries that can read nothing but the globals need SetGlobal.
package telemetry
