package notification

import (
	"context"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/dbtest"
)

// The migrator only goes up; this runs each down file by hand, newest first, and the up
// files again, so a broken down migration is found here rather than during an incident.
func TestMigrationsGoDownAndUpAgain(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t, "notification", migrations())
	ctx := context.Background()
	fsys := migrations()

	downs, err := fs.Glob(fsys, "*.down.sql")
	require.NoError(t, err)
	require.NotEmpty(t, downs)
	slices.Reverse(downs)
	for _, name := range downs {
		sql, err := fs.ReadFile(fsys, name)
		require.NoError(t, err)
		_, err = pool.Exec(ctx, string(sql))
		require.NoError(t, err, name)
	}
	var tables int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'notification' AND tablename <> 'schema_migrations'").Scan(&tables))
	require.Zero(t, tables)

	ups, err := fs.Glob(fsys, "*.up.sql")
	require.NoError(t, err)
	for _, name := range ups {
		sql, err := fs.ReadFile(fsys, name)
		require.NoError(t, err)
		_, err = pool.Exec(ctx, string(sql))
		require.NoError(t, err, strings.TrimSuffix(name, ".up.sql"))
	}
}
