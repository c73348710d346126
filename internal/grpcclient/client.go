// Package grpcclient dials other Backplane services the same way everywhere: telemetry,
// the caller's request id, a default deadline, retries of transient failures in the
// service config, and round-robin balancing over every address DNS returns, so that each
// service scales out behind a headless Kubernetes service.
package grpcclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/backplane/backplane/internal/requestid"
	"github.com/backplane/backplane/internal/telemetry"
)

// serviceConfig balances over every resolved address and retries calls that failed
// before reaching a handler (UNAVAILABLE), which is always safe, with backoff.
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [{}],
    "retryPolicy": {
      "maxAttempts": 3,
      "initialBackoff": "0.05s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// Config holds a client's dependencies.
type Config struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagator     propagation.TextMapPropagator
	// Credentials secure the connection; nil means plaintext, for loopback only.
	Credentials credentials.TransportCredentials
	// DefaultTimeout bounds calls whose context carries no deadline. Zero means 10s.
	DefaultTimeout time.Duration
	// Options are appended to the dial options.
	Options []grpc.DialOption
}

// Dial creates a client connection to target, such as "dns:///auth:9090" or
// "127.0.0.1:9101". Connections are made lazily, on the first call.
func Dial(target string, cfg Config) (*grpc.ClientConn, error) {
	if target == "" {
		return nil, errors.New("grpcclient: empty target")
	}
	if cfg.TracerProvider == nil || cfg.MeterProvider == nil || cfg.Propagator == nil {
		return nil, errors.New("grpcclient: TracerProvider, MeterProvider and Propagator are required")
	}
	creds := cfg.Credentials
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	timeout := cfg.DefaultTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(cfg.TracerProvider),
			otelgrpc.WithMeterProvider(cfg.MeterProvider),
			otelgrpc.WithPropagators(cfg.Propagator),
			// Health checks (/readyz asks every few seconds) and reflection are left out.
			otelgrpc.WithFilter(telemetry.GRPCFilter(nil)),
		)),
		grpc.WithChainUnaryInterceptor(unaryContext(timeout)),
		grpc.WithChainStreamInterceptor(streamContext()),
	}
	opts = append(opts, cfg.Options...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpcclient: dial %s: %w", target, err)
	}
	return conn, nil
}

// outgoing carries the request id of the call being served to the next service.
func outgoing(ctx context.Context) context.Context {
	if id := requestid.FromContext(ctx); id != "" {
		// One key looked up, not a copy of all the outgoing metadata: this runs on every
		// call a service or the edge makes.
		if len(metadata.ValueFromOutgoingContext(ctx, requestid.MetadataKey)) == 0 {
			ctx = metadata.AppendToOutgoingContext(ctx, requestid.MetadataKey, id)
		}
	}
	return ctx
}

func unaryContext(timeout time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		return invoker(outgoing(ctx), method, req, reply, cc, opts...)
	}
}

// Streams get no default deadline: a notification stream may rightly stay open for hours.
func streamContext() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(outgoing(ctx), desc, cc, method, opts...)
	}
}
