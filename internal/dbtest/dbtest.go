// Package dbtest gives each test a private database on the real PostgreSQL server, so
// tests run in parallel, exercise the real SQL, and leave nothing behind. It never skips:
// a test that cannot reach PostgreSQL fails, because CI always has one.
//
// A migrated database is cloned (CREATE DATABASE … TEMPLATE) from a template that was
// migrated once, rather than migrated per test: a clone is a copy made inside the server,
// as quick as creating an empty database, whatever the migrations do. Templates are named after a hash of what built them,
// so a changed migration builds a new one and never reuses a stale schema; see
// template.go for how concurrent test processes share them and how old ones go away.
package dbtest

import (
	"context"
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

// Option adds to what [NewPool] builds into a test database.
type Option func(*templateSpec)

// WithMigrations also migrates schema with migrations (as [database.Migrate] does at run
// time), for a service whose pool spans several schemas. They run after the main
// schema's migrations, in the order the options are given.
func WithMigrations(schema string, migrations fs.FS) Option {
	return func(s *templateSpec) {
		s.schemas = append(s.schemas, schemaMigrations{schema: schema, migrations: migrations})
	}
}

// WithStep runs step on the template database after every migration, for setup that
// is not a directory of migration files (a library's own migrator, such as River's).
// The pool's search_path is the main schema, as [NewPool]'s is.
//
// key stands for what the step builds and is part of the template's identity: change
// it whenever the step would build something different (include the library's
// migration version, say), or tests keep cloning a template built by the old step.
func WithStep(key string, step func(ctx context.Context, pool *pgxpool.Pool) error) Option {
	return func(s *templateSpec) {
		s.steps = append(s.steps, templateStep{key: key, run: step})
	}
}

// NewDatabase creates an empty database with a unique name, dropped when the test ends,
// and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, nil)
}

// NewPool returns a pool on a private database in which schema is migrated with
// migrations (and whatever opts add), with search_path set to schema, as the service
// gets at run time. The database is dropped when the test ends.
func NewPool(t testing.TB, schema string, migrations fs.FS, opts ...Option) *pgxpool.Pool {
	t.Helper()
	spec := &templateSpec{schemas: []schemaMigrations{{schema: schema, migrations: migrations}}}
	for _, opt := range opts {
		opt(spec)
	}
	dbURL := newDatabase(t, spec)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := database.Open(ctx, dbURL, database.WithSchema(schema))
	if err != nil {
		t.Fatalf("dbtest: open: %v", err)
	}
	// Registered after the drop, so it runs before it: cleanups run last-in, first-out.
	t.Cleanup(pool.Close)
	return pool
}

// newDatabase creates a database, cloned from spec's template when spec is not nil,
// registers its drop with t and returns its URL.
func newDatabase(t testing.TB, spec *templateSpec) string {
	t.Helper()
	srv, err := sharedServer()
	if err != nil {
		t.Fatalf("dbtest: PostgreSQL is required for this test and did not answer at %s: %v", redacted(ServerURL()), err)
	}
	// Building a template migrates, which may take a while on a busy machine; a clone
	// on its own is quick.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	name := srv.newDatabaseName()
	dbURL, err := databaseURL(name)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	if spec == nil {
		_, err = srv.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	} else {
		err = srv.cloneTemplate(ctx, spec, name)
	}
	if err != nil {
		t.Fatalf("dbtest: create database: %v", err)
	}
	t.Cleanup(func() { srv.dropLater(name) })
	return dbURL
}

func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	return u.Redacted()
}
