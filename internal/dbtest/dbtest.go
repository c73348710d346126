// Package dbtest gives each test a private database on the real PostgreSQL server, so
// tests run in parallel, exercise the real SQL, and leave nothing behind. It never skips:
// a test that cannot reach PostgreSQL fails, because CI always has one.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/backplane/backplane/internal/database"
)

// ServerURL is the administrative URL of the test server: BACKPLANE_TEST_DATABASE_URL,
// or the local server every Backplane machine runs.
func ServerURL() string {
	if u := os.Getenv("BACKPLANE_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// NewDatabase creates an empty database with a unique name, dropped when the test ends,
// and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		t.Fatalf("dbtest: PostgreSQL is required for this test and did not answer at %s: %v", redacted(ServerURL()), err)
	}
	defer func() { _ = admin.Close(context.Background()) }()

	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "bptest_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("dbtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, ServerURL())
		if err != nil {
			t.Errorf("dbtest: drop %s: %v", name, err)
			return
		}
		defer func() { _ = conn.Close(context.Background()) }()
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("dbtest: drop %s: %v", name, err)
		}
	})

	u, err := url.Parse(ServerURL())
	if err != nil {
		t.Fatalf("dbtest: parse server URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// NewPool creates a private database, applies a service's migrations to its schema and
// returns a pool whose search_path is that schema, as the service gets at run time.
func NewPool(t testing.TB, schema string, migrations fs.FS) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dbURL := NewDatabase(t)
	pool, err := database.Open(ctx, dbURL, database.WithSchema(schema))
	if err != nil {
		t.Fatalf("dbtest: open: %v", err)
	}
	// Registered after the drop, so it runs before it: cleanups run last-in, first-out.
	t.Cleanup(pool.Close)
	if _, err := database.Migrate(ctx, pool, schema, migrations); err != nil {
		t.Fatalf("dbtest: migrate %s: %v", schema, err)
	}
	return pool
}

func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	return u.Redacted()
}
