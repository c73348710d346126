package database

import (
	"embed"
	"io/fs"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

//go:embed testdata/migrations
var testdataMigrations embed.FS

// widgetMigrations is how a service hands its embedded migrations over.
func widgetMigrations(t *testing.T) fs.FS {
	t.Helper()
	sub, err := fs.Sub(testdataMigrations, "testdata/migrations")
	require.NoError(t, err)
	return sub
}

// appliedVersions reads what the version table of schema records.
func appliedVersions(t *testing.T, pool *pgxpool.Pool, schema string) []int64 {
	t.Helper()
	rows, err := pool.Query(t.Context(), "SELECT version FROM "+pgx.Identifier{schema, "schema_migrations"}.Sanitize()+" ORDER BY version")
	require.NoError(t, err)
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	return versions
}

// tableExists reports whether schema.table exists.
func tableExists(t *testing.T, pool *pgxpool.Pool, schema, table string) bool {
	t.Helper()
	var exists bool
	err := pool.QueryRow(t.Context(),
		"SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2)", schema, table).Scan(&exists)
	require.NoError(t, err)
	return exists
}

// mapMigrations builds an in-memory migrations directory from up files;
// each gets a trivial down file.
func mapMigrations(ups map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, up := range ups {
		fsys[name+".up.sql"] = &fstest.MapFile{Data: []byte(up)}
		fsys[name+".down.sql"] = &fstest.MapFile{Data: []byte("SELECT 1;")}
	}
	return fsys
}

func TestMigrateAppliesInOrderAndRecordsVersions(t *testing.T) {
	t.Parallel()
	b := setup(t)

	applied, err := Migrate(t.Context(), b.pool, "widgets", widgetMigrations(t))
	require.NoError(t, err)
	require.Equal(t, 2, applied)
	require.Equal(t, []int64{1, 2}, appliedVersions(t, b.pool, "widgets"))

	// Unqualified names in the files landed in the service schema.
	require.True(t, tableExists(t, b.pool, "widgets", "widgets"))
	require.False(t, tableExists(t, b.pool, "public", "widgets"))
	var colour string
	require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT colour FROM widgets.widgets WHERE name = 'seed'").Scan(&colour))
	require.Equal(t, "blue", colour)
}

func TestMigrateSecondRunAppliesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)

	_, err := Migrate(t.Context(), b.pool, "widgets", widgetMigrations(t))
	require.NoError(t, err)
	applied, err := Migrate(t.Context(), b.pool, "widgets", widgetMigrations(t))
	require.NoError(t, err)
	require.Zero(t, applied)
	require.Equal(t, []int64{1, 2}, appliedVersions(t, b.pool, "widgets"))
}

func TestMigrateAppliesOnlyNewMigrations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := mapMigrations(map[string]string{"0001_one": "CREATE TABLE one (id int);"})
	both := mapMigrations(map[string]string{
		"0001_one": "CREATE TABLE one (id int);",
		"0002_two": "CREATE TABLE two (id int);",
	})

	applied, err := Migrate(t.Context(), b.pool, "svc", first)
	require.NoError(t, err)
	require.Equal(t, 1, applied)
	applied, err = Migrate(t.Context(), b.pool, "svc", both)
	require.NoError(t, err)
	require.Equal(t, 1, applied)
	require.Equal(t, []int64{1, 2}, appliedVersions(t, b.pool, "svc"))
}

func TestUnappliedNamesWhatMigrateWouldApply(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := mapMigrations(map[string]string{"0001_one": "CREATE TABLE one (id int);"})
	both := mapMigrations(map[string]string{
		"0001_one": "CREATE TABLE one (id int);",
		"0002_two": "CREATE TABLE two (id int);",
	})

	lacking, err := Unapplied(t.Context(), b.pool, "svc", both)
	require.NoError(t, err)
	require.Equal(t, []string{"0001_one", "0002_two"}, lacking, "a database never migrated lacks everything")
	require.False(t, tableExists(t, b.pool, "svc", "schema_migrations"), "and checking creates nothing")

	_, err = Migrate(t.Context(), b.pool, "svc", first)
	require.NoError(t, err)
	lacking, err = Unapplied(t.Context(), b.pool, "svc", both)
	require.NoError(t, err)
	require.Equal(t, []string{"0002_two"}, lacking)

	_, err = Migrate(t.Context(), b.pool, "svc", both)
	require.NoError(t, err)
	lacking, err = Unapplied(t.Context(), b.pool, "svc", first)
	require.NoError(t, err)
	require.Empty(t, lacking, "a database ahead of the files lacks nothing")
}

func TestMigrateRollsBackFailingMigration(t *testing.T) {
	t.Parallel()
	b := setup(t)
	broken := mapMigrations(map[string]string{
		"0001_one":    "CREATE TABLE one (id int);",
		"0002_broken": "CREATE TABLE half_done (id int); SELECT 1/0;",
	})

	applied, err := Migrate(t.Context(), b.pool, "svc", broken)
	require.ErrorContains(t, err, "0002_broken")
	require.ErrorContains(t, err, "division by zero")
	require.Equal(t, 1, applied)
	require.Equal(t, []int64{1}, appliedVersions(t, b.pool, "svc"))
	require.False(t, tableExists(t, b.pool, "svc", "half_done"))

	fixed := mapMigrations(map[string]string{
		"0001_one":    "CREATE TABLE one (id int);",
		"0002_broken": "CREATE TABLE half_done (id int);",
	})
	applied, err = Migrate(t.Context(), b.pool, "svc", fixed)
	require.NoError(t, err)
	require.Equal(t, 1, applied)
	require.True(t, tableExists(t, b.pool, "svc", "half_done"))
}

func TestMigrateConcurrentCallsBothSucceed(t *testing.T) {
	t.Parallel()
	b := setup(t)

	migrations := widgetMigrations(t)

	// Several rounds, each on a fresh schema, so the race on CREATE SCHEMA
	// and on the version table gets more than one chance to show.
	for _, schema := range []string{"race_a", "race_b", "race_c"} {
		const replicas = 2
		var (
			start   = make(chan struct{})
			wg      sync.WaitGroup
			applied [replicas]int
			errs    [replicas]error
		)
		for i := range replicas {
			// Separate pools, as separate replicas would have.
			pool, err := Open(t.Context(), b.url)
			require.NoError(t, err)
			t.Cleanup(pool.Close)
			wg.Go(func() {
				<-start
				applied[i], errs[i] = Migrate(t.Context(), pool, schema, migrations)
			})
		}
		close(start)
		wg.Wait()

		for i := range replicas {
			require.NoError(t, errs[i], "replica %d", i)
		}
		require.Equal(t, 2, applied[0]+applied[1], "exactly one replica applies each migration")
		require.Equal(t, []int64{1, 2}, appliedVersions(t, b.pool, schema))
	}
}

func TestMigrateRefusesSkippedVersion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	withoutTwo := mapMigrations(map[string]string{
		"0001_one":   "SELECT 1;",
		"0003_three": "SELECT 1;",
	})
	_, err := Migrate(t.Context(), b.pool, "svc", withoutTwo)
	require.NoError(t, err)

	withTwo := mapMigrations(map[string]string{
		"0001_one":   "SELECT 1;",
		"0002_two":   "SELECT 1;",
		"0003_three": "SELECT 1;",
	})
	_, err = Migrate(t.Context(), b.pool, "svc", withTwo)
	require.ErrorContains(t, err, "0002_two was never applied")
}

func TestMigrateLeavesNewerDatabaseAlone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := Migrate(t.Context(), b.pool, "widgets", widgetMigrations(t))
	require.NoError(t, err)

	// An older replica that only knows 0001 starts after a newer one migrated.
	older := mapMigrations(map[string]string{"0001_create_widgets": "SELECT 1;"})
	applied, err := Migrate(t.Context(), b.pool, "widgets", older)
	require.NoError(t, err)
	require.Zero(t, applied)
}

func TestMigrateRejectsInvalidSchemaName(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := Migrate(t.Context(), b.pool, `widgets"; DROP SCHEMA public; --`, widgetMigrations(t))
	require.ErrorContains(t, err, "invalid schema name")
}

func TestLoadMigrationsRejectsBadDirectories(t *testing.T) {
	t.Parallel()
	down := &fstest.MapFile{Data: []byte("SELECT 1;")}
	up := &fstest.MapFile{Data: []byte("SELECT 1;")}

	tests := []struct {
		name    string
		fsys    fstest.MapFS
		wantErr string
	}{
		{"empty", fstest.MapFS{}, "no migrations found"},
		{"only a subdirectory", fstest.MapFS{"migrations/0001_a.up.sql": up}, "no migrations found"},
		{"missing down", fstest.MapFS{"0001_a.up.sql": up}, "needs both"},
		{"missing up", fstest.MapFS{"0001_a.down.sql": down}, "needs both"},
		{"empty up", fstest.MapFS{"0001_a.up.sql": {}, "0001_a.down.sql": down}, "needs both"},
		{"goose style name", fstest.MapFS{"0001_a.sql": up}, "want NNNN_name.up.sql"},
		{"short version", fstest.MapFS{"1_a.up.sql": up, "1_a.down.sql": down}, "want NNNN_name.up.sql"},
		{"upper case name", fstest.MapFS{"0001_A.up.sql": up, "0001_A.down.sql": down}, "want NNNN_name.up.sql"},
		{"version zero", fstest.MapFS{"0000_a.up.sql": up, "0000_a.down.sql": down}, "positive"},
		{"two names", fstest.MapFS{"0001_a.up.sql": up, "0001_b.down.sql": down}, "two names"},
		{"same version twice", fstest.MapFS{"0001_a.up.sql": up, "00001_a.up.sql": up, "0001_a.down.sql": down}, "same version and direction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadMigrations(tt.fsys)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestLoadMigrationsSortsByVersionAndIgnoresOtherFiles(t *testing.T) {
	t.Parallel()
	fsys := mapMigrations(map[string]string{
		"0010_ten": "SELECT 10;",
		"0002_two": "SELECT 2;",
		"0001_one": "SELECT 1;",
	})
	fsys["README.md"] = &fstest.MapFile{Data: []byte("notes")}

	migrations, err := loadMigrations(fsys)
	require.NoError(t, err)
	require.Len(t, migrations, 3)
	require.Equal(t, []int64{1, 2, 10}, []int64{migrations[0].version, migrations[1].version, migrations[2].version})
	require.Equal(t, "SELECT 10;", migrations[2].up)
	require.Equal(t, "0010_ten", migrations[2].label())
}
