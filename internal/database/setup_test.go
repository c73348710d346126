package database

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// testServerURL is the PostgreSQL server tests create their databases on.
// Tests fail, never skip, when it does not answer.
func testServerURL() string {
	if u := os.Getenv("BACKPLANE_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres"
}

// testBundle is what a test gets from setup: a database of its own, empty.
type testBundle struct {
	url  string        // connection URL of the test's database
	pool *pgxpool.Pool // a pool on it, closed at cleanup
}

// setup creates a throwaway database for one test, so tests can run in
// parallel without seeing each other's schemas, and drops it at cleanup.
func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := t.Context()

	admin, err := pgx.Connect(ctx, testServerURL())
	require.NoError(t, err, "the database tests need PostgreSQL at %s (or BACKPLANE_TEST_DATABASE_URL)", testServerURL())
	defer func() { require.NoError(t, admin.Close(context.Background())) }()

	name := "backplane_test_" + randomHex(t, 8)
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	require.NoError(t, err)
	t.Cleanup(func() {
		// t.Context is already canceled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, testServerURL())
		require.NoError(t, err)
		defer func() { require.NoError(t, admin.Close(ctx)) }()
		_, err = admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		require.NoError(t, err)
	})

	u, err := url.Parse(testServerURL())
	require.NoError(t, err)
	u.Path = "/" + name
	b := &testBundle{url: u.String()}

	b.pool, err = Open(ctx, b.url)
	require.NoError(t, err)
	t.Cleanup(b.pool.Close)
	return b
}

// randomHex returns n random bytes, hex-encoded.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	buf := make([]byte, n)
	_, err := rand.Read(buf)
	require.NoError(t, err)
	return hex.EncodeToString(buf)
}
