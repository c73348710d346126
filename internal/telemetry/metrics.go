package telemetry

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprometheus "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
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

// newPrometheusReader returns a reader serving one provider's metrics from reg.
//
// Every piece of a process registers one in the same registry, so each series
// carries its piece's service_name as a label: in `backplane dev` the edge's and
// auth's rpc_server_call_duration_seconds are separate series instead of one that
// counts both. The instrumentation scope labels (otel_scope_name, _version,
// _schema_url) are left off: they repeat on every series, say nothing an operator
// queries by, and made most of a scrape's size.
func newPrometheusReader(reg prometheus.Registerer) (sdkmetric.Reader, error) {
	r, err := otelprometheus.New(
		otelprometheus.WithRegisterer(reg),
		otelprometheus.WithoutScopeInfo(),
		otelprometheus.WithResourceAsConstantLabels(attribute.NewAllowKeysFilter(semconv.ServiceNameKey)),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	return r, nil
}

// droppedInstruments are histograms the instrumentation records that nobody reads:
// body sizes per route and status, message sizes and counts per RPC, and Redis
// connection set-up and use times (a command's use of a connection is the command's
// own duration, db.client.operation.duration, plus nothing worth a histogram). Each
// costs fifteen series or more per label combination, in every scrape and every push:
// the use-time histogram alone was a third of a dev process's /metrics.
var droppedInstruments = map[string]bool{
	"http.server.request.body.size":     true,
	"http.server.response.body.size":    true,
	"http.client.request.body.size":     true,
	"http.client.response.body.size":    true,
	"rpc.server.request.size":           true,
	"rpc.server.response.size":          true,
	"rpc.client.request.size":           true,
	"rpc.client.response.size":          true,
	"rpc.server.requests_per_rpc":       true,
	"rpc.server.responses_per_rpc":      true,
	"rpc.client.requests_per_rpc":       true,
	"rpc.client.responses_per_rpc":      true,
	"db.client.connections.create_time": true,
	"db.client.connections.use_time":    true,
}

// clientControlled are attributes HTTP server instrumentation takes from the request:
// server.address and server.port come from the Host header, so any client could
// mint new series by sending new values. Spans keep them; metrics do not.
var clientControlled = attribute.NewDenyKeysFilter(
	semconv.ServerAddressKey,
	semconv.ServerPortKey,
	semconv.ClientAddressKey,
	semconv.UserAgentOriginalKey,
	semconv.NetworkPeerAddressKey,
	semconv.NetworkPeerPortKey,
	semconv.URLPathKey,
	semconv.URLQueryKey,
)

// metricView shapes every instrument of every provider: it drops the unread
// histograms and strips client-controlled attributes from server HTTP metrics. One
// function rather than several views, because an instrument matched by two views
// becomes two streams.
func metricView(i sdkmetric.Instrument) (sdkmetric.Stream, bool) {
	s := sdkmetric.Stream{Name: i.Name, Description: i.Description, Unit: i.Unit}
	switch {
	case droppedInstruments[i.Name]:
		s.Aggregation = sdkmetric.AggregationDrop{}
	case strings.HasPrefix(i.Name, "http.server."):
		s.AttributeFilter = clientControlled
	default:
		return sdkmetric.Stream{}, false
	}
	return s, true
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
