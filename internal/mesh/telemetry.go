package mesh

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/backplane/backplane/internal/telemetry"
)

// Providers are the telemetry providers one piece of Backplane (the gateway, a
// service) reports through.
type Providers interface {
	TracerProvider() trace.TracerProvider
	MeterProvider() metric.MeterProvider
	Propagator() propagation.TextMapPropagator
}

// Telemetry is what a process needs from its telemetry setup: its own providers, for
// what the process shares between pieces (Redis in dev), and /metrics.
type Telemetry interface {
	Providers
	MetricsHandler() http.Handler
}

// pieceTelemetry is a Telemetry that reports each piece under a service.name of its
// own (internal/telemetry's), so that in `backplane dev` the edge's spans and series
// are told apart from the services' behind it.
type pieceTelemetry interface {
	Piece(name string) (*telemetry.Piece, error)
}

// providers returns the providers of piece: its own when the process's telemetry
// knows the piece, the process's otherwise.
func (p *Process) providers(piece string) Providers {
	if pt, ok := p.tel.(pieceTelemetry); ok {
		if pc, err := pt.Piece(piece); err == nil {
			return pc
		}
	}
	return p.tel
}

// instrumentHTTP traces and measures the requests of h as piece's. Each span is named
// by its route ("GET /v1/users/me") where the handler records one, by the method alone
// otherwise, as the HTTP conventions ask; probes and scrapes are left out.
func instrumentHTTP(h http.Handler, name string, pv Providers) http.Handler {
	return otelhttp.NewHandler(h, name,
		otelhttp.WithTracerProvider(pv.TracerProvider()),
		otelhttp.WithMeterProvider(pv.MeterProvider()),
		otelhttp.WithPropagators(pv.Propagator()),
		otelhttp.WithFilter(telemetry.HTTPFilter),
	)
}
