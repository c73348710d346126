package telemetry

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"

	// The SDK's own detectors use this semconv version; matching it keeps the merged
	// resource's schema URL instead of dropping it as a conflict.
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// newResource describes the process to every backend. Detectors run in order and
// later ones win, so the explicit service name and version come last and override
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES: what the program was configured
// with is what it reports.
//
// A partial resource (say, the host name could not be read) is still returned,
// together with the error, so that New can start with it and report the problem.
func newResource(ctx context.Context, cfg Config) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{semconv.ServiceName(cfg.ServiceName)}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(cfg.ServiceVersion))
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithAttributes(attrs...),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, err
}
