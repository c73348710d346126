package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Telemetry owns the process's tracer and meter providers and the Prometheus
// registry their metrics are served from. Build it once in main with New, hand its
// providers to the components that instrument themselves, and call Shutdown on the
// way out so that buffered spans and metrics are not lost.
type Telemetry struct {
	tracerProvider *sdktrace.TracerProvider
	meterProvider  *sdkmetric.MeterProvider
	propagator     propagation.TextMapPropagator
	registry       *prometheus.Registry
	metricsHandler http.Handler
	logger         *slog.Logger
}

// New builds the providers described by cfg. It does not wait for an OTLP collector:
// exporters connect and retry in the background. ctx bounds only the construction
// (resource detection); it is not retained.
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	res, err := newResource(ctx, cfg)
	if err != nil {
		if !errors.Is(err, resource.ErrPartialResource) {
			return nil, err
		}
		// Missing host details are not worth refusing to start over.
		if cfg.Logger != nil {
			cfg.Logger.WarnContext(ctx, "telemetry: partial resource", "error", err)
		}
	}
	reg, err := newRegistry()
	if err != nil {
		return nil, err
	}
	tp, err := newTracerProvider(ctx, cfg, res)
	if err != nil {
		return nil, err
	}
	mp, err := newMeterProvider(ctx, cfg, res, reg)
	if err != nil {
		// Nothing has been recorded yet, so there is nothing to wait for.
		_ = tp.Shutdown(context.WithoutCancel(ctx))
		return nil, err
	}
	return &Telemetry{
		tracerProvider: tp,
		meterProvider:  mp,
		propagator: propagation.NewCompositeTextMapPropagator(
			propagation.TraceContext{},
			propagation.Baggage{},
		),
		registry:       reg,
		metricsHandler: newMetricsHandler(reg, cfg.Logger),
		logger:         cfg.Logger,
	}, nil
}

// TracerProvider returns the provider that instrumented components create tracers
// from.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tracerProvider }

// MeterProvider returns the provider that instrumented components create meters from.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.meterProvider }

// Propagator returns the W3C trace-context and baggage propagator used to carry
// traces across HTTP and gRPC calls.
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.propagator }

// MetricsHandler serves every metric of the process in Prometheus format; mount it at
// /metrics on an internal listener.
func (t *Telemetry) MetricsHandler() http.Handler { return t.metricsHandler }

// Registry returns the Prometheus registry behind MetricsHandler, for collectors
// written directly against client_golang.
func (t *Telemetry) Registry() *prometheus.Registry { return t.registry }

// Shutdown flushes buffered spans and metrics to their exporters and stops the
// providers; spans and measurements recorded afterwards are dropped. It returns when
// the flush is done or ctx ends, whichever comes first, so give it a deadline: an
// unreachable collector would otherwise hold it for the exporters' full retry period.
// Call it once, after the servers have drained.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	return errors.Join(
		t.tracerProvider.Shutdown(ctx),
		t.meterProvider.Shutdown(ctx),
	)
}
