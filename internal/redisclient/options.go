package redisclient

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Option configures [Open].
type Option func(*openConfig)

// openConfig collects what the options set; the zero value is a valid
// configuration.
type openConfig struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
}

// WithTracerProvider sets the provider of the tracer that records a span
// for every command. Without it the OpenTelemetry global provider is used.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *openConfig) { c.tracerProvider = tp }
}

// WithMeterProvider sets the provider of the meter that records command
// durations and connection pool statistics. Without it the OpenTelemetry
// global provider is used.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *openConfig) { c.meterProvider = mp }
}
