package jobs

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/redact"
)

// Schema is the PostgreSQL schema holding the River tables of service: its name followed
// by _river ("notification" → "notification_river").
func Schema(service string) string { return service + "_river" }

// maxSchemaLen is the longest schema River accepts: it names its LISTEN/NOTIFY channels
// "<schema>.river_leadership", and a channel name has at most 63 bytes.
const maxSchemaLen = 63 - len(".river_leadership")

// schemaOf validates service and returns its River schema.
func schemaOf(service string) (string, error) {
	if service == "" {
		return "", fmt.Errorf("jobs: a service name is required")
	}
	schema := Schema(service)
	if err := database.ValidateSchemaName(schema); err != nil {
		return "", fmt.Errorf("jobs: service %q: %w", service, err)
	}
	if len(schema) > maxSchemaLen {
		return "", fmt.Errorf("jobs: service %q: schema %s is longer than River's %d bytes", service, schema, maxSchemaLen)
	}
	return schema, nil
}

// Migrate brings the River schema of service up to date with the River version this
// binary is built with, creating the schema first, and returns how many of River's
// migrations it applied. The process assembler calls it beside the service's own
// migrations (`backplane migrate` and service start-up alike).
//
// River's migrator takes no lock of its own, so Migrate holds the advisory lock that
// database.Migrate takes, on a connection of its own outside pool: any number of
// processes may migrate one database at once, one works and the others wait, then find
// nothing to do. River's migrations run through pool, each in its own transaction
// together with the row recording it. A database already at a later River version is
// left alone, so an older replica still starts during a rolling deploy.
//
// logger receives River's notes on each migration applied; nil discards them.
func Migrate(ctx context.Context, pool *pgxpool.Pool, service string, logger *slog.Logger) (applied int, err error) {
	schema, err := schemaOf(service)
	if err != nil {
		return 0, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: schema, Logger: logger})
	if err != nil {
		return 0, fmt.Errorf("jobs: migrate %s: %w", schema, err)
	}

	// A connection outside pool holds the lock, so that River's migrator always finds a
	// connection in pool, however many migrators share it and wait for the lock.
	connConfig := pool.Config().ConnConfig.Copy()
	lockConn, err := pgx.ConnectConfig(ctx, connConfig)
	if err != nil {
		return 0, redact.Error(fmt.Errorf("jobs: migrate %s: connect: %w", schema, err), redact.Spellings([]string{connConfig.Password}))
	}
	defer func() { _ = lockConn.Close(context.WithoutCancel(ctx)) }()

	err = database.WithMigrationLock(ctx, lockConn, func(ctx context.Context) error {
		// River's migrations name the schema but do not create it.
		if _, err := lockConn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		res, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
		if err != nil {
			return err
		}
		applied = len(res.Versions)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("jobs: migrate %s: %w", schema, err)
	}
	return applied, nil
}

// SchemaVersion is the latest of River's migrations that Migrate applies with the River
// version this binary is built with. Whatever Migrate builds depends on it, so a cache of
// a migrated database (a test template) names it in its key.
func SchemaVersion() int {
	// River lists its migrations without a database: the driver is never used.
	migrator, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	if err != nil {
		return 0
	}
	versions := migrator.AllVersions()
	if len(versions) == 0 {
		return 0
	}
	return versions[len(versions)-1].Version
}
