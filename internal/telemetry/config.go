package telemetry

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Config describes the process to New. A process names the pieces it hosts, or, when
// it hosts none of them, itself with ServiceName; every other field may be left zero.
//
// The deployment's own settings are the OpenTelemetry environment variables
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER,
// OTEL_EXPORTER_OTLP_*, OTEL_BSP_*, OTEL_METRIC_EXPORT_*), read from the process
// environment, as the OpenTelemetry SDK and its exporters read them.
type Config struct {
	// Pieces are the parts of Backplane this process hosts ("gateway", "auth", …): one
	// in `backplane serve <piece>`, all of them in `backplane dev`. Each gets its own
	// tracer and meter providers, reporting as service.name "backplane-<piece>".
	Pieces []string

	// ServiceName is the service.name of what belongs to the process rather than to a
	// piece (Go runtime and process metrics, the providers of Telemetry itself) when
	// the process hosts several pieces or none; empty means "backplane". A process
	// hosting one piece reports everything under that piece's name.
	ServiceName string

	// ServiceVersion becomes service.version, normally the build's version.
	ServiceVersion string

	// OTLPEndpoint, when set, is used as OTEL_EXPORTER_OTLP_ENDPOINT would be: for
	// each signal that has no OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT of its own. Besides
	// an http or https URL it may be a bare "host:port", which uses TLS unless
	// OTEL_EXPORTER_OTLP_INSECURE is true. Tests point it at a receiver without
	// touching the environment.
	OTLPEndpoint string

	// Sampler, when set, replaces OTEL_TRACES_SAMPLER and the default. Either way it
	// only applies while spans have somewhere to go: with no exporter and no
	// SpanProcessors, nothing is recorded.
	Sampler sdktrace.Sampler

	// SpanProcessors are registered on every tracer provider in addition to the OTLP
	// exporter, and count as a destination for spans. Tests pass a
	// tracetest.SpanRecorder here to see ended spans.
	SpanProcessors []sdktrace.SpanProcessor

	// ShutdownTimeout is the process's whole shutdown budget
	// (BACKPLANE_SHUTDOWN_TIMEOUT); the final flush takes FlushBudget of it.
	// Zero means a flush budget of 5s.
	ShutdownTimeout time.Duration

	// Logger receives what happens away from any caller: export failures (at most
	// one line per 30s per signal) and recoveries, failed /metrics collections and,
	// once SetGlobal has been called, the SDK's other errors. Nil drops them.
	Logger *slog.Logger
}

// pieceName is what a piece may be called: it becomes part of service.name and of
// Prometheus label values, so keep it to a plain lower-case word.
var pieceName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// validate reports configuration mistakes before anything is built, so that a bad
// endpoint fails at start-up instead of as a stream of silent export errors.
func (c Config) validate() error {
	var errs []error
	if len(c.Pieces) == 0 && strings.TrimSpace(c.ServiceName) == "" {
		errs = append(errs, errors.New("telemetry: name the Pieces the process hosts, or its ServiceName"))
	}
	if c.ServiceName != "" && strings.TrimSpace(c.ServiceName) == "" {
		errs = append(errs, errors.New("telemetry: ServiceName is blank"))
	}
	for i, p := range c.Pieces {
		if !pieceName.MatchString(p) {
			errs = append(errs, fmt.Errorf("telemetry: piece name %q: want lower-case letters, digits and dashes", p))
		}
		if slices.Contains(c.Pieces[:i], p) {
			errs = append(errs, fmt.Errorf("telemetry: piece %q named twice", p))
		}
	}
	if c.OTLPEndpoint != "" {
		if err := validateEndpoint(c.OTLPEndpoint); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("telemetry: ShutdownTimeout is negative"))
	}
	return errors.Join(errs...)
}

// validateEndpoint accepts the two forms OTLPEndpoint documents: an http or https
// URL, or a bare host:port.
func validateEndpoint(endpoint string) error {
	if isEndpointURL(endpoint) {
		return validateEndpointURL("OTLP endpoint", endpoint)
	}
	if _, _, err := net.SplitHostPort(endpoint); err != nil {
		return fmt.Errorf("telemetry: OTLP endpoint %q: want a URL or host:port: %w", endpoint, err)
	}
	return nil
}

// validateEndpointURL checks an endpoint that must be a URL, as the OTEL_EXPORTER_OTLP_*
// variables must: the SDK would otherwise read "collector:4317" as a URL whose scheme
// is "collector" and send nowhere, silently.
func validateEndpointURL(what, endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("telemetry: %s: %w", what, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("telemetry: %s %q: want an http:// or https:// URL", what, endpoint)
	}
	if u.Host == "" {
		return fmt.Errorf("telemetry: %s %q: missing host", what, endpoint)
	}
	return nil
}

// isEndpointURL reports whether endpoint carries a scheme. A bare host:port parses as
// a URL with the host as its scheme, so the separator is what tells them apart.
func isEndpointURL(endpoint string) bool {
	return strings.Contains(endpoint, "://")
}

// The OTLP protocols the exporters speak, as OTEL_EXPORTER_OTLP_PROTOCOL names them.
const (
	protocolGRPC         = "grpc"
	protocolHTTPProtobuf = "http/protobuf"
)

// signal is one kind of telemetry pushed over OTLP, named as the per-signal
// environment variables name it.
type signal struct {
	// env is the infix of the per-signal variables: TRACES or METRICS.
	env string
	// exporterVar selects the exporters: OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER.
	exporterVar string
	// accepted lists the exporter names the variable may hold; Backplane pushes only
	// over OTLP, and names the rest so that "zipkin" fails loudly instead of silently.
	accepted []string
}

var (
	tracesSignal  = signal{env: "TRACES", exporterVar: "OTEL_TRACES_EXPORTER", accepted: []string{"otlp", "none"}}
	metricsSignal = signal{env: "METRICS", exporterVar: "OTEL_METRICS_EXPORTER", accepted: []string{"otlp", "prometheus", "none"}}
)

// export is what the environment and Config decide for one signal's OTLP push.
type export struct {
	// enabled: an endpoint is configured and the exporter is not switched off.
	enabled bool
	// protocol is protocolGRPC or protocolHTTPProtobuf.
	protocol string
	// endpoint, when not empty, is Config.OTLPEndpoint, to be passed to the exporter
	// explicitly; empty leaves the exporter to read its endpoint from the environment.
	endpoint string
}

// exportFor decides a signal's OTLP push from the environment and cfg.
//
// The specification's default endpoint is localhost:4317, so an SDK following it to
// the letter pushes whenever it starts. Backplane pushes only when an endpoint is set,
// because a laptop without a collector would otherwise log export failures forever
// and pay for spans nobody receives.
//
// The specification's default protocol is http/protobuf; Backplane's is grpc, which it
// has always spoken, so that existing OTEL_EXPORTER_OTLP_ENDPOINT=…:4317 settings keep
// working.
func exportFor(sig signal, cfg Config) (export, error) {
	var errs []error
	exporters := strings.ToLower(strings.TrimSpace(os.Getenv(sig.exporterVar)))
	on := exporters == ""
	for name := range strings.SplitSeq(exporters, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(sig.accepted, name) {
			errs = append(errs, fmt.Errorf("telemetry: %s=%q: Backplane supports %s",
				sig.exporterVar, exporters, strings.Join(sig.accepted, ", ")))
			continue
		}
		on = on || name == "otlp"
	}

	protocol := protocolGRPC
	for _, name := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_" + sig.env + "_PROTOCOL"} {
		switch v := strings.TrimSpace(os.Getenv(name)); v {
		case "":
		case protocolGRPC, protocolHTTPProtobuf:
			protocol = v
		default:
			errs = append(errs, fmt.Errorf("telemetry: %s=%q: want grpc or http/protobuf", name, v))
		}
	}

	generic := strings.TrimSpace(os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	own := strings.TrimSpace(os.Getenv("OTEL_EXPORTER_OTLP_" + sig.env + "_ENDPOINT"))
	for _, v := range []struct{ name, value string }{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", generic},
		{"OTEL_EXPORTER_OTLP_" + sig.env + "_ENDPOINT", own},
	} {
		if v.value != "" {
			if err := validateEndpointURL(v.name, v.value); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return export{}, err
	}

	e := export{protocol: protocol, enabled: on && (own != "" || cfg.OTLPEndpoint != "" || generic != "")}
	if own == "" {
		e.endpoint = cfg.OTLPEndpoint
	}
	return e, nil
}
