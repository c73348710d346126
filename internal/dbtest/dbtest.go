// Package dbtest gives each test a private database on the real PostgreSQL server, so
// tests run in parallel, exercise the real SQL, and leave nothing behind. It never skips:
// a test that cannot reach PostgreSQL fails, because CI always has one.
//
// A migrated database is cloned (CREATE DATABASE … TEMPLATE) from a template that was
// migrated once, rather than migrated per test: a clone costs one file copy inside the
// server, whatever the migrations do. Templates are named after a hash of what built them,
// so a changed migration builds a new one and never reuses a stale schema; see
// template.go for how concurrent test processes share them and how old ones go away.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"strings"
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
	// Building a template migrates, which may take a while on a busy machine; a clone
	// on its own is quick.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		t.Fatalf("dbtest: PostgreSQL is required for this test and did not answer at %s: %v", redacted(ServerURL()), err)
	}
	defer func() { _ = admin.Close(context.Background()) }()

	sweepOnce.Do(func() {
		if err := sweep(ctx, admin, time.Now()); err != nil {
			// Leftovers cost disk space, not correctness: say so and carry on.
			t.Logf("dbtest: removing stale test databases: %v", err)
		}
	})

	name := testDatabaseName(time.Now())
	dbURL, err := databaseURL(name)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	if spec == nil {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Fatalf("dbtest: create database: %v", err)
		}
		t.Cleanup(func() { dropDatabase(t, name) })
		return dbURL
	}

	tmpl, err := cloneTemplate(ctx, admin, spec, name)
	if err != nil {
		t.Fatalf("dbtest: create database: %v", err)
	}
	t.Cleanup(func() { dropDatabase(t, name) })
	if err := stampTemplate(ctx, admin, tmpl); err != nil {
		// The stamp only keeps the template from being swept as unused.
		t.Logf("dbtest: %v", err)
	}
	return dbURL
}

// dropDatabase drops a test's database, disconnecting whatever the test left connected.
func dropDatabase(t testing.TB, name string) {
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
}

// testDatabasePrefix starts the name of every test database, and nothing else's.
const testDatabasePrefix = "bptest_"

// testDatabaseName is a unique name that records when the database was created, so that
// a later run can tell a database leaked by a killed test process from one in use.
func testDatabaseName(now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return testDatabasePrefix + strconv.FormatInt(now.Unix(), 36) + "_" + hex.EncodeToString(b[:])
}

// testDatabaseCreated returns when a database named by testDatabaseName was created.
func testDatabaseCreated(name string) (time.Time, error) {
	rest, ok := strings.CutPrefix(name, testDatabasePrefix)
	if !ok {
		return time.Time{}, errors.New("not a test database")
	}
	stamp, _, ok := strings.Cut(rest, "_")
	if !ok {
		return time.Time{}, errors.New("no creation time in the name")
	}
	secs, err := strconv.ParseInt(stamp, 36, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(secs, 0), nil
}

func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	return u.Redacted()
}
