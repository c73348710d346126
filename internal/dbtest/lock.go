package dbtest

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LockTables holds an ACCESS EXCLUSIVE lock on tables, in pool's database and schema,
// from a connection of its own until the test ends, so that every statement touching
// them waits: a store made as slow as a test of deadlines needs, without changing the
// code under test.
func LockTables(t testing.TB, pool *pgxpool.Pool, tables ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		t.Fatalf("dbtest: connect to lock tables: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatalf("dbtest: begin: %v", err)
	}
	names := make([]string, len(tables))
	for i, table := range tables {
		names[i] = pgx.Identifier(strings.Split(table, ".")).Sanitize()
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+strings.Join(names, ", ")+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatalf("dbtest: lock %v: %v", tables, err)
	}
	// Registered after the connection's Close, so it runs first: the lock goes before
	// the test's own cleanup drops the database.
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
}
