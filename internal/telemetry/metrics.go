package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprometheus "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// newRegistry returns the process's own Prometheus registry with the Go runtime and
// process collectors that the global default registry would otherwise provide.
func newRegistry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("telemetry: register collector: %w", err)
		}
	}
	return reg, nil
}

// newMeterProvider builds the meter provider. Its Prometheus reader is pulled by
// scrapes of reg; when an endpoint is set, a periodic reader also pushes to OTLP at
// the SDK's default interval (60s, or OTEL_METRIC_EXPORT_INTERVAL).
func newMeterProvider(ctx context.Context, cfg Config, res *resource.Resource, reg *prometheus.Registry) (*sdkmetric.MeterProvider, error) {
	promReader, err := otelprometheus.New(otelprometheus.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	opts := []sdkmetric.Option{
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(promReader),
	}
	if cfg.OTLPEndpoint != "" {
		exp, err := newOTLPMetricExporter(ctx, cfg.OTLPEndpoint)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	}
	return sdkmetric.NewMeterProvider(opts...), nil
}

// newMetricsHandler serves reg in the Prometheus exposition formats.
func newMetricsHandler(reg *prometheus.Registry, logger *slog.Logger) http.Handler {
	opts := promhttp.HandlerOpts{
		// Serve whatever could be collected: one failing collector should not blank
		// every other metric for the scrape.
		ErrorHandling: promhttp.ContinueOnError,
		// Counts the errors above as promhttp_metric_handler_errors_total.
		Registry: reg,
		// OpenMetrics carries the exemplars (trace ids) the OpenTelemetry exporter
		// attaches; Prometheus negotiates it, plain clients still get text.
		EnableOpenMetrics: true,
	}
	if logger != nil {
		opts.ErrorLog = promErrorLog{logger: logger}
	}
	// Instrumenting the handler adds the scrape counters promhttp.Handler would have.
	return promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, opts))
}

// promErrorLog adapts a slog.Logger to the Println-only logger promhttp expects.
type promErrorLog struct {
	logger *slog.Logger
}

// Println logs v as one error record.
func (l promErrorLog) Println(v ...any) {
	l.logger.Error("telemetry: serving metrics", "error", fmt.Sprint(v...))
}
