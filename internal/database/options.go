package database

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
	schema         string
}

// WithTracerProvider sets the provider of the tracer that records a span
// for every query made inside a traced request. Without it the OpenTelemetry
// global provider is used.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *openConfig) { c.tracerProvider = tp }
}

// WithMeterProvider sets the provider of the meter that records query
// durations and pool statistics. Without it the OpenTelemetry global
// provider is used.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *openConfig) { c.meterProvider = mp }
}

// WithSchema sets search_path on every connection to the service's schema
// followed by public, so that a store's unqualified table names resolve in
// the schema its migrations created them in (see [Migrate]). Open fails if
// the name is not a valid schema name (see [ValidateSchemaName]).
func WithSchema(schema string) Option {
	return func(c *openConfig) { c.schema = schema }
}
