package telemetry

import (
	"context"
	"fmt"
	"net/url"
	"path"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The exporters read the rest of their settings from the environment themselves:
// the endpoint when Config.OTLPEndpoint does not give one, headers, timeout,
// compression, certificates, insecure. Backplane only picks the exporter the
// protocol calls for. They connect lazily and retry in the background, so building
// them never waits for the collector: a collector that is down at start-up costs
// telemetry, not availability.

// newSpanExporter returns the OTLP span exporter e describes.
func newSpanExporter(ctx context.Context, e export) (sdktrace.SpanExporter, error) {
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch e.protocol {
	case protocolHTTPProtobuf:
		var opts []otlptracehttp.Option
		switch {
		case e.endpoint == "":
		case isEndpointURL(e.endpoint):
			opts = append(opts, otlptracehttp.WithEndpointURL(signalURL(e.endpoint, "/v1/traces")))
		default:
			opts = append(opts, otlptracehttp.WithEndpoint(e.endpoint))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	default:
		var opts []otlptracegrpc.Option
		switch {
		case e.endpoint == "":
		case isEndpointURL(e.endpoint):
			opts = append(opts, otlptracegrpc.WithEndpointURL(e.endpoint))
		default:
			opts = append(opts, otlptracegrpc.WithEndpoint(e.endpoint))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP span exporter (%s): %w", e.protocol, err)
	}
	return exp, nil
}

// newMetricExporter returns the OTLP metric exporter e describes.
func newMetricExporter(ctx context.Context, e export) (sdkmetric.Exporter, error) {
	var (
		exp sdkmetric.Exporter
		err error
	)
	switch e.protocol {
	case protocolHTTPProtobuf:
		var opts []otlpmetrichttp.Option
		switch {
		case e.endpoint == "":
		case isEndpointURL(e.endpoint):
			opts = append(opts, otlpmetrichttp.WithEndpointURL(signalURL(e.endpoint, "/v1/metrics")))
		default:
			opts = append(opts, otlpmetrichttp.WithEndpoint(e.endpoint))
		}
		exp, err = otlpmetrichttp.New(ctx, opts...)
	default:
		var opts []otlpmetricgrpc.Option
		switch {
		case e.endpoint == "":
		case isEndpointURL(e.endpoint):
			opts = append(opts, otlpmetricgrpc.WithEndpointURL(e.endpoint))
		default:
			opts = append(opts, otlpmetricgrpc.WithEndpoint(e.endpoint))
		}
		exp, err = otlpmetricgrpc.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP metric exporter (%s): %w", e.protocol, err)
	}
	return exp, nil
}

// signalURL appends a signal's path to a base endpoint URL, as the specification has
// OTLP/HTTP do with OTEL_EXPORTER_OTLP_ENDPOINT (which Config.OTLPEndpoint stands for).
// The URL was validated by Config.validate.
func signalURL(base, signalPath string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	u.Path = path.Join("/", u.Path, signalPath)
	return u.String()
}
