package dbtest

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"

	"github.com/backplane/backplane/internal/fault"
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

// RequireCutByDeadline calls call with parent given a 300 ms deadline, expecting it to
// wait on tables locked by LockTables, and fails the test unless the call's error is a
// DEADLINE_EXCEEDED that is logged below error: a query cut short by its caller's
// deadline is neither a bug of ours (INTERNAL) nor a database that is down
// (UNAVAILABLE).
func RequireCutByDeadline(t testing.TB, parent context.Context, call func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(parent, 300*time.Millisecond)
	defer cancel()
	err := call(ctx)
	if err == nil {
		t.Fatal("dbtest: the call succeeded past its deadline on locked tables")
	}
	if code := fault.Status(err).Code(); code != codes.DeadlineExceeded {
		t.Fatalf("dbtest: the call answered %v, want DeadlineExceeded: %v", code, err)
	}
	if level := fault.KindOf(err).LogLevel(); level >= slog.LevelError {
		t.Fatalf("dbtest: a caller's deadline is logged at %v, want below error: %v", level, err)
	}
}
