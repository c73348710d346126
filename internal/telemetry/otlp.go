package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The exporters connect lazily and retry in the background, so building them never
// waits for the collector: a collector that is down at start-up costs telemetry, not
// availability.

// newOTLPSpanExporter returns an exporter pushing spans to endpoint.
func newOTLPSpanExporter(ctx context.Context, endpoint string) (sdktrace.SpanExporter, error) {
	opt := otlptracegrpc.WithEndpoint(endpoint)
	if isEndpointURL(endpoint) {
		opt = otlptracegrpc.WithEndpointURL(endpoint)
	}
	exp, err := otlptracegrpc.New(ctx, opt)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP span exporter: %w", err)
	}
	return exp, nil
}

// newOTLPMetricExporter returns an exporter pushing metrics to endpoint.
func newOTLPMetricExporter(ctx context.Context, endpoint string) (sdkmetric.Exporter, error) {
	opt := otlpmetricgrpc.WithEndpoint(endpoint)
	if isEndpointURL(endpoint) {
		opt = otlpmetricgrpc.WithEndpointURL(endpoint)
	}
	exp, err := otlpmetricgrpc.New(ctx, opt)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP metric exporter: %w", err)
	}
	return exp, nil
}
