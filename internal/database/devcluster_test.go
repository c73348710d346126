package database

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// devClusterDir returns an empty directory for a dev cluster. As root the
// cluster runs as the postgres user, which must be able to reach it, and
// t.TempDir's parent is private to root.
func devClusterDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pg")
	if os.Geteuid() == 0 {
		require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
		require.NoError(t, os.Chmod(filepath.Dir(filepath.Dir(dir)), 0o755))
	}
	return dir
}

// startDevCluster starts a cluster in dir and makes sure it is stopped when
// the test ends, before its directory is removed.
func startDevCluster(t *testing.T, dir string) *DevCluster {
	t.Helper()
	c, err := StartDevCluster(t.Context(), dir)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, c.Stop(ctx))
	})
	return c
}

func TestDevClusterStartsServesAndStops(t *testing.T) {
	t.Parallel()
	dir := devClusterDir(t)
	ctx := t.Context()

	c := startDevCluster(t, dir)
	pool, err := Open(ctx, c.URL())
	require.NoError(t, err)
	_, err = pool.Exec(ctx, "CREATE TABLE kept (id int); INSERT INTO kept VALUES (7)")
	require.NoError(t, err)
	pool.Close()
	require.FileExists(t, filepath.Join(dir, "server.log"))

	require.NoError(t, c.Stop(ctx))
	require.NoError(t, c.Stop(ctx), "stopping twice is harmless")
	_, err = Open(ctx, c.URL())
	require.Error(t, err, "nothing answers after Stop")

	// A second start reuses the cluster instead of running initdb again.
	c = startDevCluster(t, dir)
	pool, err = Open(ctx, c.URL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	var id int
	require.NoError(t, pool.QueryRow(ctx, "SELECT id FROM kept").Scan(&id))
	require.Equal(t, 7, id)
}

func TestDevClusterRestartsServerLeftRunning(t *testing.T) {
	t.Parallel()
	dir := devClusterDir(t)

	// The first cluster is never stopped by its owner, as after a crash.
	orphan := startDevCluster(t, dir)
	c := startDevCluster(t, dir)

	pool, err := Open(t.Context(), c.URL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = Open(t.Context(), orphan.URL())
	require.Error(t, err, "the orphan was stopped before the restart")
}

func TestChoosePostgresWithoutBinaries(t *testing.T) {
	t.Parallel()
	_, err := choosePostgres(t.Context(), []string{t.TempDir()}, 0)
	require.ErrorIs(t, err, ErrPostgresNotInstalled)
	require.ErrorContains(t, err, "BACKPLANE_DATABASE_URL")
	require.ErrorContains(t, err, "apt-get install postgresql")
}

func TestChoosePostgresNeedsTheClustersVersion(t *testing.T) {
	t.Parallel()
	newest, err := choosePostgres(t.Context(), postgresBinaryDirs(), 0)
	require.NoError(t, err, "these tests need PostgreSQL server binaries installed")

	same, err := choosePostgres(t.Context(), postgresBinaryDirs(), newest.major)
	require.NoError(t, err)
	require.Equal(t, newest, same)

	_, err = choosePostgres(t.Context(), postgresBinaryDirs(), 7)
	require.ErrorContains(t, err, "created by PostgreSQL 7")
}

func TestStartDevClusterRefusesLongPaths(t *testing.T) {
	t.Parallel()
	long := filepath.Join(t.TempDir(), "a-very-long-directory-name-that-pushes-the-socket-path-over-the-limit-of-unix-sockets")
	_, err := StartDevCluster(t.Context(), long)
	require.ErrorContains(t, err, "choose a shorter one")
}

// The server runs as another user when we are root, and must reach its directory: a
// parent it cannot pass through is reported with what to do, rather than left to
// initdb's bare "Permission denied".
func TestCanReachExplainsAnUnreachableDirectory(t *testing.T) {
	t.Parallel()
	other := &clusterOwner{name: "nobody", uid: 65534, gid: 65534}
	private := t.TempDir() // 0700, and so is its parent
	dir := filepath.Join(private, "data", "postgres")
	require.NoError(t, os.MkdirAll(filepath.Dir(dir), 0o755))
	err := other.canReach(dir)
	require.Error(t, err)
	require.Contains(t, err.Error(), "cannot pass through")
	require.Contains(t, err.Error(), "BACKPLANE_DATA_DIR")

	require.NoError(t, os.Chmod(private, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(private), 0o755))
	require.NoError(t, other.canReach(dir))
}
