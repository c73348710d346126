package database

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migrations are applied by this small migrator rather than by
// pressly/goose, which was the first choice. Our migrations are pairs of
// NNNN_name.up.sql / .down.sql files, a layout goose does not read (it wants
// one file with -- +goose annotations), so each pair would have had to be
// re-registered as a goose Go migration; CREATE SCHEMA would have needed a
// custom goose Store to run inside goose's lock, before its version table;
// and goose splits "schema.table" on the dot and pastes it into a string
// literal, so the table name could not be quoted with pgx.Identifier. That
// is more glue than the ~100 lines below, whose every step is visible.
//
// The SQL here is built at run time because the schema name is a parameter
// of every statement, which sqlc cannot express; names are validated and
// quoted with pgx.Identifier before use.

// migrationLockKey is the PostgreSQL advisory lock every migrator of a
// database (Migrate, and River's through internal/jobs) holds while it
// works (0x62706d6967726174 is "bpmigrat" in ASCII).
// It is one key for all schemas rather than one per schema: migrations of
// different services can still touch shared objects (CREATE EXTENSION IF
// NOT EXISTS races on pg_extension just as CREATE SCHEMA IF NOT EXISTS races
// on pg_namespace), and running a few services' startup migrations one
// after another costs nothing.
const migrationLockKey int64 = 0x62706d6967726174

// Migrate brings schema up to date with the migrations at the root of
// migrations (typically an embedded directory passed through fs.Sub) and
// returns how many it applied.
//
// Migrations are files named NNNN_name.up.sql and NNNN_name.down.sql; every
// version needs both, though Migrate only ever applies up files, in version
// order. Each up file runs in its own transaction together with the row
// that records its version in <schema>.schema_migrations, so a failing
// migration leaves no trace and the versions before it stay applied. Inside
// that transaction search_path is the schema followed by public, so
// migrations create their objects with unqualified names and never name the
// schema themselves. Statements that cannot run in a transaction, such as
// CREATE INDEX CONCURRENTLY, are therefore not supported.
//
// Many replicas may call Migrate at once: everything, from CREATE SCHEMA to
// the last migration, happens while holding a session-level advisory lock,
// so one replica migrates and the others wait, then find nothing to do.
// The wait is bounded only by ctx. A database already at a later version
// than the files know is left alone, so an old replica can still start
// during a rolling deploy; a missing version below the latest applied one
// is an error, because applying it now would run it out of order.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, migrations fs.FS) (applied int, err error) {
	if err := ValidateSchemaName(schema); err != nil {
		return 0, err
	}
	all, err := loadMigrations(migrations)
	if err != nil {
		return 0, err
	}

	pooled, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("database: migrate %s: acquire connection: %w", schema, err)
	}
	defer pooled.Release()
	conn := pooled.Conn()
	err = WithMigrationLock(ctx, conn, func(ctx context.Context) error {
		versionTable := pgx.Identifier{schema, "schema_migrations"}.Sanitize()
		if err := ensureVersionTable(ctx, conn, schema, versionTable); err != nil {
			return err
		}
		pending, err := pendingMigrations(ctx, conn, versionTable, all)
		if err != nil {
			return err
		}
		for _, m := range pending {
			if err := applyMigration(ctx, conn, schema, versionTable, m); err != nil {
				return fmt.Errorf("apply %s: %w", m.label(), err)
			}
			applied++
		}
		return nil
	})
	if err != nil {
		return applied, fmt.Errorf("database: migrate %s: %w", schema, err)
	}
	return applied, nil
}

// Unapplied returns the labels (NNNN_name) of the migrations in migrations that schema
// lacks, oldest first, without applying or locking anything: how a process that does not
// migrate (BACKPLANE_MIGRATE_ON_START=false) checks that someone did. A database at a
// later version than the files know lacks nothing.
func Unapplied(ctx context.Context, pool *pgxpool.Pool, schema string, migrations fs.FS) ([]string, error) {
	if err := ValidateSchemaName(schema); err != nil {
		return nil, err
	}
	all, err := loadMigrations(migrations)
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", pgx.Identifier{schema, "schema_migrations"}.Sanitize()).Scan(&exists); err != nil {
		return nil, fmt.Errorf("database: check migrations of %s: %w", schema, err)
	}
	pending := all
	if exists {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return nil, fmt.Errorf("database: check migrations of %s: %w", schema, err)
		}
		defer conn.Release()
		if pending, err = pendingMigrations(ctx, conn.Conn(), pgx.Identifier{schema, "schema_migrations"}.Sanitize(), all); err != nil {
			return nil, fmt.Errorf("database: check migrations of %s: %w", schema, err)
		}
	}
	labels := make([]string, len(pending))
	for i, m := range pending {
		labels[i] = m.label()
	}
	return labels, nil
}

// ensureVersionTable creates the schema and its version table if needed.
func ensureVersionTable(ctx context.Context, conn *pgx.Conn, schema, versionTable string) error {
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	_, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+versionTable+` (
		version    bigint      PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`)
	if err != nil {
		return fmt.Errorf("create version table: %w", err)
	}
	return nil
}

// pendingMigrations returns the migrations newer than the latest applied
// version, after checking that none older than it was skipped.
func pendingMigrations(ctx context.Context, conn *pgx.Conn, versionTable string, all []migration) ([]migration, error) {
	rows, err := conn.Query(ctx, "SELECT version FROM "+versionTable)
	if err != nil {
		return nil, fmt.Errorf("read applied versions: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("read applied versions: %w", err)
	}
	applied := make(map[int64]bool, len(versions))
	var latest int64
	for _, v := range versions {
		applied[v] = true
		latest = max(latest, v)
	}

	var pending []migration
	for _, m := range all {
		switch {
		case m.version > latest:
			pending = append(pending, m)
		case !applied[m.version]:
			return nil, fmt.Errorf("migration %s was never applied but version %d already is: renumber it above %d", m.label(), latest, latest)
		}
	}
	return pending, nil
}

// applyMigration runs one up migration and records its version, atomically.
func applyMigration(ctx context.Context, conn *pgx.Conn, schema, versionTable string, m migration) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+searchPath(schema)); err != nil {
			return fmt.Errorf("set search_path: %w", err)
		}
		// Without arguments pgx uses the simple protocol, which lets one
		// file hold many statements.
		if _, err := tx.Exec(ctx, m.up); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO "+versionTable+" (version, name) VALUES ($1, $2)", m.version, m.name)
		if err != nil {
			return fmt.Errorf("record version: %w", err)
		}
		return nil
	})
}

// WithMigrationLock runs fn while conn holds the session-level advisory lock
// that every Migrate call in the database takes, so that any other migrator
// (internal/jobs runs River's this way) waits for fn and fn waits for them.
// The wait is bounded only by ctx. fn may work through other connections: it
// is the lock, not the connection, that keeps the migrators apart.
func WithMigrationLock(ctx context.Context, conn *pgx.Conn, fn func(ctx context.Context) error) error {
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		return fmt.Errorf("take advisory lock: %w", err)
	}
	defer func() {
		// The unlock must run even when ctx is done. If it fails, the
		// connection is closed instead: a pooled connection still holding
		// the lock would block every later migrator until it was recycled.
		unlockCtx := context.WithoutCancel(ctx)
		if _, unlockErr := conn.Exec(unlockCtx, "SELECT pg_advisory_unlock($1)", migrationLockKey); unlockErr != nil {
			_ = conn.Close(unlockCtx)
		}
	}()
	return fn(ctx)
}
