package telemetry_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/backplane/backplane/internal/telemetry"
)

// resourceOf returns the resource attributes of a span started from tp, as strings.
func resourceOf(t *testing.T, tp trace.TracerProvider, rec *tracetest.SpanRecorder) map[string]string {
	t.Helper()
	before := len(rec.Ended())
	_, span := tp.Tracer("test").Start(t.Context(), "probe")
	span.End()
	ended := rec.Ended()
	require.Len(t, ended, before+1)
	out := map[string]string{}
	for _, kv := range ended[before].Resource().Attributes() {
		out[string(kv.Key)] = kv.Value.String()
	}
	return out
}

func recording(pieces ...string) (telemetry.Config, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	return telemetry.Config{
		Pieces:         pieces,
		ServiceVersion: "v9.9.9",
		Sampler:        sdktrace.AlwaysSample(),
		SpanProcessors: []sdktrace.SpanProcessor{rec},
	}, rec
}

func TestEachPieceReportsUnderItsOwnName(t *testing.T) {
	t.Parallel()
	cfg, rec := recording("gateway", "auth", "notification")
	tel := start(t, cfg)

	var instance string
	for _, name := range cfg.Pieces {
		piece, err := tel.Piece(name)
		require.NoError(t, err)
		require.Equal(t, name, piece.Name())
		require.Equal(t, "backplane-"+name, piece.ServiceName())
		res := resourceOf(t, piece.TracerProvider(), rec)
		require.Equal(t, "backplane-"+name, res[string(semconv.ServiceNameKey)])
		require.Equal(t, "backplane", res[string(semconv.ServiceNamespaceKey)])
		require.Equal(t, "v9.9.9", res[string(semconv.ServiceVersionKey)])
		require.NotEmpty(t, res[string(semconv.ServiceInstanceIDKey)])
		if instance == "" {
			instance = res[string(semconv.ServiceInstanceIDKey)]
		}
		require.Equal(t, instance, res[string(semconv.ServiceInstanceIDKey)], "one instance id per process")
		require.NotNil(t, piece.MeterProvider())
		require.Equal(t, tel.Propagator(), piece.Propagator())
	}
	// What belongs to the process rather than a piece has the process's name.
	require.Equal(t, "backplane", resourceOf(t, tel.TracerProvider(), rec)[string(semconv.ServiceNameKey)])

	_, err := tel.Piece("billing")
	require.ErrorContains(t, err, `no piece "billing" (this process hosts: auth, gateway, notification)`)

	other := start(t, cfg)
	otherPiece, err := other.Piece("auth")
	require.NoError(t, err)
	require.NotEqual(t, instance, resourceOf(t, otherPiece.TracerProvider(), rec)[string(semconv.ServiceInstanceIDKey)],
		"each process run is a new instance")
}

func TestOnePieceIsTheProcess(t *testing.T) {
	t.Parallel()
	cfg, _ := recording("auth")
	tel := start(t, cfg)
	piece, err := tel.Piece("auth")
	require.NoError(t, err)
	require.Same(t, piece.TracerProvider(), tel.TracerProvider())
	require.Same(t, piece.MeterProvider(), tel.MeterProvider())
}

func TestServiceNameFromTheEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name        string
		env         map[string]string
		pieces      []string
		serviceName string
		want        map[string]string // piece → service.name; "" is the process
		wantAttrs   map[string]string
	}{
		{
			name:   "one piece takes OTEL_SERVICE_NAME as it is",
			env:    map[string]string{"OTEL_SERVICE_NAME": "acme-auth"},
			pieces: []string{"auth"},
			want:   map[string]string{"auth": "acme-auth", "": "acme-auth"},
		},
		{
			name:   "several pieces take it as their prefix",
			env:    map[string]string{"OTEL_SERVICE_NAME": "shop"},
			pieces: []string{"gateway", "auth"},
			want:   map[string]string{"gateway": "shop-gateway", "auth": "shop-auth", "": "shop"},
		},
		{
			name: "service.name in OTEL_RESOURCE_ATTRIBUTES counts the same, other attributes join and win",
			env: map[string]string{
				"OTEL_RESOURCE_ATTRIBUTES": "service.name=shop,deployment.environment.name=prod,service.namespace=payments",
			},
			pieces:    []string{"gateway", "auth"},
			want:      map[string]string{"gateway": "shop-gateway", "auth": "shop-auth"},
			wantAttrs: map[string]string{"deployment.environment.name": "prod", "service.namespace": "payments"},
		},
		{
			name: "OTEL_SERVICE_NAME outranks OTEL_RESOURCE_ATTRIBUTES",
			env: map[string]string{
				"OTEL_SERVICE_NAME":        "first",
				"OTEL_RESOURCE_ATTRIBUTES": "service.name=second",
			},
			pieces: []string{"gateway", "auth"},
			want:   map[string]string{"gateway": "first-gateway"},
		},
		{
			name:        "a process without pieces keeps its configured name",
			pieces:      nil,
			serviceName: "backplane-migrate",
			want:        map[string]string{"": "backplane-migrate"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, rec := recording(tc.pieces...)
			cfg.ServiceName = tc.serviceName
			tel := start(t, cfg)
			for piece, want := range tc.want {
				tp := tel.TracerProvider()
				if piece != "" {
					p, err := tel.Piece(piece)
					require.NoError(t, err)
					require.Equal(t, want, p.ServiceName())
					tp = p.TracerProvider()
				}
				res := resourceOf(t, tp, rec)
				require.Equal(t, want, res[string(semconv.ServiceNameKey)], piece)
				for k, v := range tc.wantAttrs {
					require.Equal(t, v, res[k], k)
				}
			}
		})
	}
}

func TestPieceNamesAreChecked(t *testing.T) {
	t.Parallel()
	for name, pieces := range map[string][]string{
		"upper case": {"Gateway"},
		"space":      {"auth service"},
		"twice":      {"auth", "auth"},
		"empty":      {""},
	} {
		_, err := telemetry.New(t.Context(), telemetry.Config{Pieces: pieces})
		require.Error(t, err, name)
	}
}
