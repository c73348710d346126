package redisclient

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"

	"github.com/backplane/backplane/internal/redact"
	"github.com/backplane/backplane/internal/telemetry"
)

// Open connects to the Redis deployment rawURL describes (see the package
// documentation for its forms) and pings it. The client is a *redis.Client
// for a single server or a Sentinel-managed primary and a
// *redis.ClusterClient for a cluster.
//
// Every command is traced and measured through OpenTelemetry. Spans carry
// the command name but not its arguments, which hold keys and values such as
// session tokens, nor the caller's source location; connection dials are not
// traced.
//
// Error messages never contain a password from rawURL. The caller closes the
// client.
func Open(ctx context.Context, rawURL string, opts ...Option) (redis.UniversalClient, error) {
	var cfg openConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	secrets := passwordsIn(rawURL)

	ep, err := parseURL(rawURL)
	if err != nil {
		// Only the message survives: the wrapped error may quote rawURL.
		return nil, errors.New(redact.Error(fmt.Errorf("redisclient: parse URL: %w", err), secrets).Error())
	}
	secrets = append(secrets, ep.passwords()...)
	client := ep.withDefaults().newClient()

	tracingOpts := []redisotel.TracingOption{
		redisotel.WithDBStatement(false),
		// The calling function, file and line cost a stack walk on every command,
		// traced or not, and the span's parent already says who called.
		redisotel.WithCallerEnabled(false),
		// A dial and the handshake that follows are a pool refill, not a step of the
		// request that happened to trigger it; the pool's metrics show them.
		redisotel.WithDialFilter(true),
		redisotel.WithCommandFilter(isHandshake),
		redisotel.WithCommandsFilter(func(cmds []redis.Cmder) bool {
			for _, cmd := range cmds {
				if !isHandshake(cmd) {
					return false
				}
			}
			return true
		}),
	}
	if cfg.tracerProvider != nil {
		tracingOpts = append(tracingOpts, redisotel.WithTracerProvider(cfg.tracerProvider))
	}
	var metricsOpts []redisotel.MetricsOption
	if cfg.meterProvider != nil {
		metricsOpts = append(metricsOpts, redisotel.WithMeterProvider(cfg.meterProvider))
	}
	// A command's span is a leaf that carries nothing to another hop: with no exporter
	// the hook would start and drop one span per command for nothing.
	if cfg.tracerProvider == nil || telemetry.RecordsSpans(cfg.tracerProvider) {
		if err := redisotel.InstrumentTracing(client, tracingOpts...); err != nil {
			_ = client.Close()
			return nil, fmt.Errorf("redisclient: instrument tracing: %w", err)
		}
	}
	if err := redisotel.InstrumentMetrics(client, metricsOpts...); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redisclient: instrument metrics: %w", err)
	}

	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, redact.Error(fmt.Errorf("redisclient: ping %s: %w", ep, err), secrets)
	}
	return client, nil
}

// isHandshake reports whether cmd is one go-redis sends to set up a new connection.
// AUTH (and HELLO, which may carry credentials) must not be traced at all; the rest
// would add three spans to whichever request opened the connection.
func isHandshake(cmd redis.Cmder) bool {
	switch strings.ToLower(cmd.Name()) {
	case "hello", "auth", "client", "select", "readonly":
		return true
	default:
		return false
	}
}
