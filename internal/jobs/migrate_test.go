package jobs_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/jobs"
)

func TestSchemaIsTheServiceNameWithRiver(t *testing.T) {
	t.Parallel()
	require.Equal(t, "notification_river", jobs.Schema("notification"))
}

// tableExists reports whether schema.table exists.
func tableExists(t *testing.T, ctx context.Context, pool *pgxpool.Pool, schema, table string) bool {
	t.Helper()
	var exists bool
	err := pool.QueryRow(ctx,
		"SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2)", schema, table).Scan(&exists)
	require.NoError(t, err)
	return exists
}

// Two `backplane migrate` at once on an empty database, each a process with its own
// pool, migrating the service's schema and then its River schema: both succeed, River's
// migrations are applied once between them, and a third run finds nothing to do.
func TestMigrateTwiceConcurrentlyOnAnEmptyDatabase(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewDatabase(t)
	open := func() *pgxpool.Pool {
		pool, err := database.Open(t.Context(), dbURL, database.WithSchema(service))
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		return pool
	}
	pools := []*pgxpool.Pool{open(), open()}

	var wg sync.WaitGroup
	applied := make([]int, len(pools))
	errs := make([]error, len(pools))
	for i, pool := range pools {
		wg.Go(func() {
			if _, errs[i] = database.Migrate(t.Context(), pool, service, ordersMigrations(t)); errs[i] != nil {
				return
			}
			applied[i], errs[i] = jobs.Migrate(t.Context(), pool, service, nil)
		})
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])

	migrator, err := rivermigrate.New(riverpgxv5.New(pools[0]), nil)
	require.NoError(t, err)
	require.Equal(t, len(migrator.AllVersions()), applied[0]+applied[1], "River's migrations applied once in all")
	require.Contains(t, applied, 0, "one of the two found nothing left to do")

	// River's tables are in the River schema only, not in the service's nor in public.
	require.True(t, tableExists(t, t.Context(), pools[0], "orders_river", "river_job"))
	require.True(t, tableExists(t, t.Context(), pools[0], "orders_river", "river_leader"))
	require.False(t, tableExists(t, t.Context(), pools[0], "orders", "river_job"))
	require.False(t, tableExists(t, t.Context(), pools[0], "public", "river_job"))

	again, err := jobs.Migrate(t.Context(), pools[1], service, nil)
	require.NoError(t, err)
	require.Zero(t, again)
}

// The River migrator and the service migrator exclude each other: while a service
// migration holds the lock, River's waits.
func TestMigrateWaitsForTheMigrationLock(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t, service, ordersMigrations(t))
	conn, err := pool.Acquire(t.Context())
	require.NoError(t, err)
	defer conn.Release()

	done := make(chan error, 1)
	err = database.WithMigrationLock(t.Context(), conn.Conn(), func(ctx context.Context) error {
		// ctx is the test's, which outlives this callback as the migration must.
		go func() {
			_, err := jobs.Migrate(ctx, pool, service, nil)
			done <- err
		}()
		// Wait until the River migration is blocked on the lock, then check that it
		// has created nothing yet.
		require.Eventually(t, func() bool {
			var waiting bool
			err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted)`).Scan(&waiting)
			return err == nil && waiting
		}, 10*time.Second, 10*time.Millisecond)
		require.False(t, tableExists(t, ctx, pool, "orders_river", "river_job"))
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, <-done)
	require.True(t, tableExists(t, t.Context(), pool, "orders_river", "river_job"))
}

func TestMigrateRefusesABadServiceName(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t, service, ordersMigrations(t))
	for _, name := range []string{"", "Orders", "a_service_name_so_long_that_river_channels_would_not_fit"} {
		_, err := jobs.Migrate(t.Context(), pool, name, nil)
		require.Error(t, err, "service %q", name)
	}
}

func TestStartRefusesAnUnmigratedSchema(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t, service, ordersMigrations(t))
	var runs atomic.Int64
	client := newClient(t, pool, jobs.Config{Workers: counter(&runs)})
	err := client.Start(t.Context())
	require.ErrorContains(t, err, "not migrated")
}
