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
// and steps that built it. The ones left behind are dropped by a later process's sweep
// once nobody has used them for staleAfter; each process records its use in the
// template's comment (the one place a template holds data without being connected to).

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

	// inUseRetryFor bounds the wait for a template or build database that a session
	// is still leaving (PostgreSQL lets go of a closed connection asynchronously).
	inUseRetryFor = 15 * time.Second
)

// sweepKey is the advisory lock held while left-over databases are dropped
// (0x6270737765657020 is "bpsweep " in ASCII).
const sweepKey int64 = 0x6270737765657020

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
	h.Write(fmt.Appendf(nil, "%s\n", templateFormat))
	for _, sm := range s.schemas {
		if err := database.ValidateSchemaName(sm.schema); err != nil {
			return "", err
		}
		h.Write(fmt.Appendf(nil, "schema %q\n", sm.schema))
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
			h.Write(fmt.Appendf(nil, "file %q %d\n", e.Name(), len(body)))
			h.Write(body)
		}
	}
	for _, st := range s.steps {
		h.Write(fmt.Appendf(nil, "step %q\n", st.key))
	}
	main := s.schemas[0].schema
	main = main[:min(len(main), 30)]
	return templatePrefix + main + "_" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// cloneTemplate creates database name from spec's template, building the template first
// if no process has.
func (s *server) cloneTemplate(ctx context.Context, spec *templateSpec, name string) error {
	tmpl, err := spec.name()
	if err != nil {
		return err
	}
	conn, err := s.admin.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	for attempt := 0; ; attempt++ {
		if err := ensureTemplate(ctx, conn, spec, tmpl); err != nil {
			return fmt.Errorf("template %s: %w", tmpl, err)
		}
		err := retryWhileInUse(ctx, func() error {
			_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{tmpl}.Sanitize())
			return err
		})
		// Another process's sweep may have dropped the template between the check and
		// the copy: build it again, once.
		if attempt == 0 && sqlState(err) == "3D000" { // invalid_catalog_name
			continue
		}
		if err != nil {
			return fmt.Errorf("clone %s: %w", tmpl, err)
		}
		break
	}
	// Recorded once per process: the stamp only has to outlive staleAfter. It only keeps
	// the template from the sweep, so a failure is not the test's: the next clone tries
	// again.
	if _, done := s.stamped.LoadOrStore(tmpl, struct{}{}); !done {
		if err := stampUse(ctx, conn.Conn(), tmpl, time.Now()); err != nil {
			s.stamped.Delete(tmpl)
		}
	}
	return nil
}

// ensureTemplate makes sure template tmpl exists, building it unless another process has
// or is doing so.
func ensureTemplate(ctx context.Context, conn *pgxpool.Conn, spec *templateSpec, tmpl string) error {
	if ok, err := databaseExists(ctx, conn.Conn(), tmpl); err != nil || ok {
		return err
	}
	return withAdvisoryLock(ctx, conn, lockKey(tmpl), func() error {
		// Whoever held the lock before us has probably built it.
		if ok, err := databaseExists(ctx, conn.Conn(), tmpl); err != nil || ok {
			return err
		}
		return buildTemplate(ctx, conn.Conn(), spec, tmpl)
	})
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

// stampUse writes the time of use into a database's comment.
func stampUse(ctx context.Context, admin *pgx.Conn, name string, at time.Time) error {
	// COMMENT takes no parameters; the text is ours and holds no quote.
	comment := usedCommentPrefix + at.UTC().Format(time.RFC3339)
	if _, err := admin.Exec(ctx, "COMMENT ON DATABASE "+pgx.Identifier{name}.Sanitize()+" IS '"+comment+"'"); err != nil {
		return fmt.Errorf("record use of %s: %w", name, err)
	}
	return nil
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

// lockKey is the advisory lock key that guards building template name: 63 bits of a
// hash of it, so that the key is a non-negative bigint however the hash falls.
func lockKey(name string) int64 {
	sum := sha256.Sum256([]byte("dbtest build " + name))
	return int64(binary.BigEndian.Uint64(sum[:8]) >> 1)
}

// sqlState is err's PostgreSQL error code, or "" if it has none.
func sqlState(err error) string {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code
	}
	return ""
}
