package telemetry

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Config describes the process to New. ServiceName is required; every other field
// may be left zero.
type Config struct {
	// ServiceName becomes the service.name resource attribute, e.g. "billing".
	ServiceName string
	// ServiceVersion becomes service.version; empty leaves it to
	// OTEL_RESOURCE_ATTRIBUTES, if set.
	ServiceVersion string

	// OTLPEndpoint is the OTLP/gRPC collector that spans and metrics are pushed to;
	// empty disables the push, leaving only the Prometheus endpoint. Callers
	// typically pass OTEL_EXPORTER_OTLP_ENDPOINT through.
	//
	// "http://host:4317" connects in plaintext, "https://host:4317" with TLS. A bare
	// "host:4317" uses TLS unless OTEL_EXPORTER_OTLP_INSECURE is true, as the
	// OpenTelemetry specification prescribes; the exporters read that variable
	// themselves, along with the other OTEL_EXPORTER_OTLP_* settings (headers,
	// timeout, compression, certificates).
	OTLPEndpoint string

	// Sampler decides which new traces are recorded. Nil means
	// ParentBased(AlwaysSample()): every trace the caller did not explicitly decline
	// upstream is kept.
	Sampler sdktrace.Sampler

	// SpanProcessors are registered on the tracer provider in addition to the OTLP
	// exporter. Tests pass a tracetest.SpanRecorder here to see ended spans.
	SpanProcessors []sdktrace.SpanProcessor

	// Logger receives errors that happen away from any caller: failed /metrics
	// collections and, once SetGlobal has been called, export failures reported by
	// the OpenTelemetry SDK. Nil drops them.
	Logger *slog.Logger
}

// validate reports configuration mistakes before anything is built, so that a bad
// endpoint fails at start-up instead of as a stream of silent export errors.
func (c Config) validate() error {
	var errs []error
	if strings.TrimSpace(c.ServiceName) == "" {
		errs = append(errs, errors.New("telemetry: ServiceName is required"))
	}
	if c.OTLPEndpoint != "" {
		if err := validateEndpoint(c.OTLPEndpoint); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validateEndpoint accepts the two forms OTLPEndpoint documents: an http or https
// URL, or a bare host:port.
func validateEndpoint(endpoint string) error {
	if isEndpointURL(endpoint) {
		u, err := url.Parse(endpoint)
		if err != nil {
			return fmt.Errorf("telemetry: OTLP endpoint: %w", err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("telemetry: OTLP endpoint %q: scheme must be http or https", endpoint)
		}
		if u.Host == "" {
			return fmt.Errorf("telemetry: OTLP endpoint %q: missing host", endpoint)
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(endpoint); err != nil {
		return fmt.Errorf("telemetry: OTLP endpoint %q: want a URL or host:port: %w", endpoint, err)
	}
	return nil
}

// isEndpointURL reports whether endpoint carries a scheme. A bare host:port parses as
// a URL with the host as its scheme, so the separator is what tells them apart.
func isEndpointURL(endpoint string) bool {
	return strings.Contains(endpoint, "://")
}
