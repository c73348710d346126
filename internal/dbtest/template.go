package dbtest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/backplane/backplane/internal/database"
)

// How templates are shared.
//
// go test runs each package's tests in a process of its own, several at once, and every
// worktree on a machine uses the same server; so a template is built by whichever process
// needs it first, while the others wait on a PostgreSQL advisory lock named after it, and
// is found by name afterwards. It is built under a temporary name and renamed when
// complete, so a template that exists is always whole. PostgreSQL copies a template only
// while nobody is connected to it, so a finished template refuses connections
// (ALLOW_CONNECTIONS false); a clone that still meets "being accessed by other users"
// (autovacuum, a psql session of a curious developer) retries briefly.
//
// Templates are never edited, only replaced: the name carries a hash of the migrations
// and steps that built it. The ones left behind are dropped by the first process of a
// later run once nobody has used them for staleAfter; each process records its use in the
// template's comment (the only place a template can hold data without being connected to).

const (
	// templateFormat is part of every template's identity: change it when the way
	// templates are built changes, so no test clones one built the old way.
	templateFormat = "backplane dbtest template 1"

	// templatePrefix starts the name of every template and template being built.
	templatePrefix = "bptmpl_"
	// buildSuffix ends the name a template is built under.
	buildSuffix = "_build"

	// usedCommentPrefix starts the comment in which a template records its last use.
	usedCommentPrefix = "backplane dbtest template, last used "

	// staleAfter is how long an unused template is kept. Rebuilding one costs a
	// second, so this only needs to outlast a working day's pauses between runs.
	staleAfter = 24 * time.Hour
	// leakedAfter is how old a test database must be before a later run drops it as
	// leaked by a killed process: well beyond any test binary's timeout.
	leakedAfter = 6 * time.Hour

	// inUseRetryFor bounds the wait for a template or build database that a session
	// is still leaving (PostgreSQL lets go of a closed connection asynchronously).
	inUseRetryFor = 15 * time.Second
)

// sweepKey is the advisory lock held while stale databases are dropped
// (0x6270737765657020 is "bpsweep " in ASCII).
const sweepKey int64 = 0x6270737765657020

// Process-wide state, kept to the minimum that a helper called from unrelated tests
// needs: stale databases are looked for once per test process, and a template's use is
// recorded once per process rather than once per test.
var (
	sweepOnce sync.Once
	stamped   sync.Map // template name → struct{}
)

// schemaMigrations is one schema and the migrations that build it.
type schemaMigrations struct {
	schema     string
	migrations fs.FS
}

// templateStep is a setup step run on a template after its migrations.
type templateStep struct {
	key string
	run func(ctx context.Context, pool *pgxpool.Pool) error
}

// templateSpec is what a template is built from; schemas[0] is the main schema.
type templateSpec struct {
	schemas []schemaMigrations
	steps   []templateStep
}

// name is the template's name: the main schema, for people listing databases, and a hash
// of everything that builds it. It stays within PostgreSQL's 63-byte identifiers with
// room for buildSuffix.
func (s *templateSpec) name() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", templateFormat)
	for _, sm := range s.schemas {
		if err := database.ValidateSchemaName(sm.schema); err != nil {
			return "", err
		}
		fmt.Fprintf(h, "schema %q\n", sm.schema)
		if sm.migrations == nil {
			continue
		}
		// ReadDir sorts by name, so the hash does not depend on the file system's order.
		entries, err := fs.ReadDir(sm.migrations, ".")
		if err != nil {
			return "", fmt.Errorf("read migrations of %s: %w", sm.schema, err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			body, err := fs.ReadFile(sm.migrations, e.Name())
			if err != nil {
				return "", fmt.Errorf("read migrations of %s: %w", sm.schema, err)
			}
			fmt.Fprintf(h, "file %q %d\n", e.Name(), len(body))
			h.Write(body)
		}
	}
	for _, st := range s.steps {
		fmt.Fprintf(h, "step %q\n", st.key)
	}
	main := s.schemas[0].schema
	main = main[:min(len(main), 30)]
	return templatePrefix + main + "_" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// cloneTemplate creates database name from spec's template, building the template first
// if no process has, and returns the template's name.
func cloneTemplate(ctx context.Context, admin *pgx.Conn, spec *templateSpec, name string) (string, error) {
	tmpl, err := spec.name()
	if err != nil {
		return "", err
	}
	for attempt := 0; ; attempt++ {
		if err := ensureTemplate(ctx, admin, spec, tmpl); err != nil {
			return tmpl, fmt.Errorf("template %s: %w", tmpl, err)
		}
		err := retryWhileInUse(ctx, func() error {
			_, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{tmpl}.Sanitize())
			return err
		})
		// Another process's sweep may have dropped the template between the check and
		// the copy: build it again, once.
		if attempt == 0 && sqlState(err) == "3D000" { // invalid_catalog_name
			continue
		}
		if err != nil {
			return tmpl, fmt.Errorf("clone %s: %w", tmpl, err)
		}
		return tmpl, nil
	}
}

// ensureTemplate makes sure template tmpl exists, building it unless another process has
// or is doing so.
func ensureTemplate(ctx context.Context, admin *pgx.Conn, spec *templateSpec, tmpl string) (err error) {
	if ok, err := databaseExists(ctx, admin, tmpl); err != nil || ok {
		return err
	}
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey(tmpl)); err != nil {
		return fmt.Errorf("take build lock: %w", err)
	}
	defer func() {
		if _, unlockErr := admin.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockKey(tmpl)); unlockErr != nil {
			// The session ends with the test's admin connection, and the lock with it.
			err = errors.Join(err, fmt.Errorf("release build lock: %w", unlockErr))
		}
	}()
	// Whoever held the lock before us has probably built it.
	if ok, err := databaseExists(ctx, admin, tmpl); err != nil || ok {
		return err
	}
	return buildTemplate(ctx, admin, spec, tmpl)
}

// buildTemplate builds tmpl under a temporary name, then renames it. The caller holds
// the template's lock.
func buildTemplate(ctx context.Context, admin *pgx.Conn, spec *templateSpec, tmpl string) (err error) {
	build := tmpl + buildSuffix
	buildIdent := pgx.Identifier{build}.Sanitize()
	// Left behind by a process that died while building.
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+buildIdent+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop an abandoned build: %w", err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+buildIdent); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	defer func() {
		if err != nil {
			_, dropErr := admin.Exec(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+buildIdent+" WITH (FORCE)")
			err = errors.Join(err, dropErr)
		}
	}()
	// Stamped now, so that a build abandoned by a killed process is swept in time.
	if err := stampUse(ctx, admin, build, time.Now()); err != nil {
		return err
	}
	if err := populate(ctx, build, spec); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+buildIdent+" WITH ALLOW_CONNECTIONS false IS_TEMPLATE true"); err != nil {
		return fmt.Errorf("mark as template: %w", err)
	}
	return retryWhileInUse(ctx, func() error {
		_, err := admin.Exec(ctx, "ALTER DATABASE "+buildIdent+" RENAME TO "+pgx.Identifier{tmpl}.Sanitize())
		return err
	})
}

// populate migrates database name and runs the steps, closing every connection it
// opened before returning.
func populate(ctx context.Context, name string, spec *templateSpec) error {
	dbURL, err := databaseURL(name)
	if err != nil {
		return err
	}
	pool, err := database.Open(ctx, dbURL, database.WithSchema(spec.schemas[0].schema))
	if err != nil {
		return err
	}
	defer pool.Close()
	for _, sm := range spec.schemas {
		if _, err := database.Migrate(ctx, pool, sm.schema, sm.migrations); err != nil {
			return err
		}
	}
	for _, st := range spec.steps {
		if err := st.run(ctx, pool); err != nil {
			return fmt.Errorf("step %q: %w", st.key, err)
		}
	}
	return nil
}

// stampTemplate records that this process uses tmpl, once per process.
func stampTemplate(ctx context.Context, admin *pgx.Conn, tmpl string) error {
	if _, done := stamped.Load(tmpl); done {
		return nil
	}
	if err := stampUse(ctx, admin, tmpl, time.Now()); err != nil {
		return err
	}
	stamped.Store(tmpl, struct{}{})
	return nil
}

// stampUse writes the time of use into a database's comment.
func stampUse(ctx context.Context, admin *pgx.Conn, name string, at time.Time) error {
	// COMMENT takes no parameters; the text is ours and holds no quote.
	comment := usedCommentPrefix + at.UTC().Format(time.RFC3339)
	if _, err := admin.Exec(ctx, "COMMENT ON DATABASE "+pgx.Identifier{name}.Sanitize()+" IS '"+comment+"'"); err != nil {
		return fmt.Errorf("record use of %s: %w", name, err)
	}
	return nil
}

// sweep drops templates unused for staleAfter and test databases older than leakedAfter.
// Databases it cannot date are left alone.
func sweep(ctx context.Context, admin *pgx.Conn, now time.Time) (err error) {
	// One process sweeps at a time; the others wait, then find little left to do.
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", sweepKey); err != nil {
		return fmt.Errorf("take sweep lock: %w", err)
	}
	defer func() {
		_, unlockErr := admin.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", sweepKey)
		err = errors.Join(err, unlockErr)
	}()

	rows, err := admin.Query(ctx, `SELECT datname, datistemplate, COALESCE(shobj_description(oid, 'pg_database'), '')
		FROM pg_database WHERE starts_with(datname, $1) OR starts_with(datname, $2)`, testDatabasePrefix, templatePrefix)
	if err != nil {
		return fmt.Errorf("list databases: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[listedDatabase])
	if err != nil {
		return fmt.Errorf("list databases: %w", err)
	}
	var errs []error
	for _, db := range found {
		if !db.stale(now) {
			continue
		}
		ident := pgx.Identifier{db.Name}.Sanitize()
		if db.IsTemplate {
			if _, err := admin.Exec(ctx, "ALTER DATABASE "+ident+" IS_TEMPLATE false"); err != nil {
				errs = append(errs, fmt.Errorf("drop %s: %w", db.Name, err))
				continue
			}
		}
		// FORCE: nobody uses a stale database, and a leaked one may still have the
		// connections of the process that died holding them open for a moment.
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			errs = append(errs, fmt.Errorf("drop %s: %w", db.Name, err))
		}
	}
	return errors.Join(errs...)
}

// listedDatabase is a row of sweep's listing.
type listedDatabase struct {
	Name       string
	IsTemplate bool
	Comment    string
}

// stale reports whether the sweep should drop the database.
func (d listedDatabase) stale(now time.Time) bool {
	if strings.HasPrefix(d.Name, testDatabasePrefix) {
		created, err := testDatabaseCreated(d.Name)
		return err == nil && now.Sub(created) > leakedAfter
	}
	stamp, ok := strings.CutPrefix(d.Comment, usedCommentPrefix)
	if !ok {
		return false
	}
	lastUsed, err := time.Parse(time.RFC3339, stamp)
	return err == nil && now.Sub(lastUsed) > staleAfter
}

// retryWhileInUse runs op until it stops failing with "database is being accessed by
// other users", for at most inUseRetryFor.
func retryWhileInUse(ctx context.Context, op func() error) error {
	deadline := time.Now().Add(inUseRetryFor)
	wait := 20 * time.Millisecond
	for {
		err := op()
		if sqlState(err) != "55006" || time.Now().After(deadline) { // object_in_use
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// databaseExists reports whether the server has a database called name.
func databaseExists(ctx context.Context, admin *pgx.Conn, name string) (bool, error) {
	var ok bool
	err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look for database %s: %w", name, err)
	}
	return ok, nil
}

// databaseURL is the URL of database name on the test server.
func databaseURL(name string) (string, error) {
	u, err := url.Parse(ServerURL())
	if err != nil {
		return "", fmt.Errorf("parse server URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// lockKey is the advisory lock key that guards building template name.
func lockKey(name string) int64 {
	sum := sha256.Sum256([]byte("dbtest build " + name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// sqlState is err's PostgreSQL error code, or "" if it has none.
func sqlState(err error) string {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code
	}
	return ""
}
