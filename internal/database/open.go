package database

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5/pgxpool"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/backplane/backplane/internal/redact"
)

// Open connects a pgx pool to the PostgreSQL server at connString (a
// postgres:// URL or a keyword/value string; pool settings such as
// pool_max_conns go in it too) and pings it. Every query made inside a traced
// request gets a span (pool acquisition and statement preparation do not:
// see queryTracer) and is measured through OpenTelemetry, and the pool's
// statistics are recorded as metrics, named after the schema when WithSchema
// is given.
//
// Error messages never contain the password from connString. The caller
// closes the pool; its statistics stay registered with the meter provider
// for the life of the process, so a process opens one pool per database.
func Open(ctx context.Context, connString string, opts ...Option) (*pgxpool.Pool, error) {
	var cfg openConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	secrets := passwordsIn(connString)

	poolConfig, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// Only the message survives: the wrapped parse error may quote
		// connString verbatim.
		return nil, errors.New(redact.Error(fmt.Errorf("database: parse connection string: %w", err), secrets).Error())
	}
	secrets = append(secrets, poolConfig.ConnConfig.Password)

	if cfg.schema != "" {
		if err := ValidateSchemaName(cfg.schema); err != nil {
			return nil, err
		}
		poolConfig.ConnConfig.RuntimeParams["search_path"] = searchPath(cfg.schema)
	}

	// Each service's pool reports under its own name, so that five pools on one
	// server are five series rather than one that sums their connections.
	poolName := semconv.DBClientConnectionPoolName(target(poolConfig))
	if cfg.schema != "" {
		poolName = semconv.DBClientConnectionPoolName(cfg.schema)
	}
	tracerOpts := []otelpgx.Option{otelpgx.WithMeterAttributes(poolName)}
	statsOpts := []otelpgx.StatsOption{otelpgx.WithStatsAttributes(poolName)}
	if cfg.tracerProvider != nil {
		tracerOpts = append(tracerOpts, otelpgx.WithTracerProvider(cfg.tracerProvider))
	}
	if cfg.meterProvider != nil {
		tracerOpts = append(tracerOpts, otelpgx.WithMeterProvider(cfg.meterProvider))
		statsOpts = append(statsOpts, otelpgx.WithStatsMeterProvider(cfg.meterProvider))
	}
	poolConfig.ConnConfig.Tracer = queryTracer{t: otelpgx.NewTracer(tracerOpts...)}

	pool, err := pgxpool.NewWithConfig(ctx, poolConfig)
	if err != nil {
		return nil, redact.Error(fmt.Errorf("database: create pool for %s: %w", target(poolConfig), err), secrets)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, redact.Error(fmt.Errorf("database: ping %s: %w", target(poolConfig), err), secrets)
	}
	if err := otelpgx.RecordStats(pool, statsOpts...); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database: record pool statistics: %w", err)
	}
	return pool, nil
}

// target names the server and database for error messages, without
// credentials.
func target(c *pgxpool.Config) string {
	cc := c.ConnConfig
	host := cc.Host
	if strings.HasPrefix(host, "/") {
		return fmt.Sprintf("%s/%s", host, cc.Database)
	}
	return fmt.Sprintf("%s:%d/%s", host, cc.Port, cc.Database)
}
