package telemetry

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"

	// The SDK's own detectors use this semconv version; matching it keeps the merged
	// resource's schema URL instead of dropping it as a conflict.
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// namespace is service.namespace of every piece, and the prefix of their names.
const namespace = "backplane"

// identity builds the resource of each piece of the process.
//
// Names follow one rule: a piece is "backplane-<piece>". OTEL_SERVICE_NAME (or a
// service.name in OTEL_RESOURCE_ATTRIBUTES, which it outranks, as the specification
// says) replaces that name when the process hosts one piece, as an operator naming a
// deployment expects. When one process hosts several pieces (`backplane dev`), giving
// them all one name would merge six services' spans and series into one, so there the
// variable replaces the "backplane" prefix instead: OTEL_SERVICE_NAME=shop gives
// shop-gateway, shop-auth, …
//
// Every other attribute of OTEL_RESOURCE_ATTRIBUTES is added to every piece and wins
// over Backplane's own values (service.namespace, service.version,
// service.instance.id), which are defaults the deployment may override.
type identity struct {
	// base holds what describes the process: host, SDK, service.namespace,
	// service.instance.id and service.version.
	base *resource.Resource
	// env is what OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME set.
	env *resource.Resource
	// override is the service.name the environment set, if any.
	override string
	// single is true when the process hosts exactly one piece.
	single bool
}

// newIdentity detects the process's resource. A partial resource (say, the host name
// could not be read) is still returned, together with an error wrapping
// resource.ErrPartialResource, so that New can start with it and report the problem.
func newIdentity(ctx context.Context, cfg Config) (*identity, error) {
	attrs := []attribute.KeyValue{
		semconv.ServiceNamespace(namespace),
		// One id per process run, shared by its pieces: (namespace, name, instance id)
		// is what must be unique, and a restart is a new instance.
		semconv.ServiceInstanceID(uuid.NewString()),
	}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(cfg.ServiceVersion))
	}
	var partial error
	base, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithAttributes(attrs...),
	)
	if err != nil {
		if !errors.Is(err, resource.ErrPartialResource) {
			return nil, fmt.Errorf("telemetry: resource: %w", err)
		}
		partial = err
	}
	env, err := resource.New(ctx, resource.WithFromEnv())
	if err != nil {
		// A malformed OTEL_RESOURCE_ATTRIBUTES is a configuration mistake like any
		// other, not a partial resource to start with: the error is not wrapped.
		return nil, fmt.Errorf("telemetry: OTEL_RESOURCE_ATTRIBUTES: %v", err) //nolint:errorlint // deliberately not wrapped: callers must not mistake it for resource.ErrPartialResource
	}
	id := &identity{base: base, env: env, single: len(cfg.Pieces) == 1}
	if v, ok := env.Set().Value(semconv.ServiceNameKey); ok {
		id.override = v.AsString()
	}
	return id, partial
}

// pieceName returns the service.name of piece.
func (id *identity) pieceName(piece string) string {
	switch {
	case id.override != "" && id.single:
		return id.override
	case id.override != "":
		return id.override + "-" + piece
	default:
		return namespace + "-" + piece
	}
}

// processName returns the service.name of the process itself when it hosts several
// pieces or none: the environment's name, else configured, else "backplane".
func (id *identity) processName(configured string) string {
	switch {
	case id.override != "":
		return id.override
	case configured != "":
		return configured
	default:
		return namespace
	}
}

// resource returns the resource for a service called name.
func (id *identity) resource(name string) (*resource.Resource, error) {
	res, err := resource.Merge(id.base, id.env)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	res, err = resource.Merge(res, resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(name)))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}
