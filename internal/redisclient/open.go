package redisclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"

	"github.com/backplane/backplane/internal/redact"
)

// Open connects to the Redis deployment rawURL describes (see the package
// documentation for its forms) and pings it. The client is a *redis.Client
// for a single server or a Sentinel-managed primary and a
// *redis.ClusterClient for a cluster.
//
// Every command is traced and measured through OpenTelemetry. Spans carry
// the command name but not its arguments, which hold keys and values such as
// session tokens.
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
	client := ep.newClient()

	tracingOpts := []redisotel.TracingOption{redisotel.WithDBStatement(false)}
	if cfg.tracerProvider != nil {
		tracingOpts = append(tracingOpts, redisotel.WithTracerProvider(cfg.tracerProvider))
	}
	var metricsOpts []redisotel.MetricsOption
	if cfg.meterProvider != nil {
		metricsOpts = append(metricsOpts, redisotel.WithMeterProvider(cfg.meterProvider))
	}
	if err := redisotel.InstrumentTracing(client, tracingOpts...); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redisclient: instrument tracing: %w", err)
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
