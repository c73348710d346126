package database

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOpenConnectsAndQueries(t *testing.T) {
	t.Parallel()
	b := setup(t)

	pool, err := Open(t.Context(), b.url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	var one int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT 1").Scan(&one))
	require.Equal(t, 1, one)
}

func TestOpenWithSchemaSetsSearchPath(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := Migrate(t.Context(), b.pool, "widgets", widgetMigrations(t))
	require.NoError(t, err)

	pool, err := Open(t.Context(), b.url, WithSchema("widgets"))
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	// The store's unqualified name finds the table its migration created.
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM widgets").Scan(&n))
	require.Equal(t, 1, n)
}

func TestOpenRejectsInvalidSchema(t *testing.T) {
	t.Parallel()
	_, err := Open(t.Context(), testServerURL(), WithSchema("Widgets"))
	require.ErrorContains(t, err, "invalid schema name")
}

func TestOpenErrorsNeverContainThePassword(t *testing.T) {
	t.Parallel()
	const password = "s3cret-Pa55"

	tests := []struct {
		name       string
		connString string
		wantErr    string
	}{
		{"unreachable URL", "postgres://postgres:" + password + "@127.0.0.1:1/postgres?connect_timeout=2", "ping 127.0.0.1:1/postgres"},
		{"unreachable keyword/value", "host=127.0.0.1 port=1 user=postgres password=" + password + " connect_timeout=2", "ping"},
		{"quoted keyword/value", "host=127.0.0.1 port=1 password='" + password + "' connect_timeout=2", "ping"},
		{"bad port", "postgres://postgres:" + password + "@127.0.0.1:notaport/postgres", "parse connection string"},
		{"bad escape", "postgres://postgres:" + password + "%zz@127.0.0.1/postgres", "parse connection string"},
		{"unknown parameter", "postgres://postgres:" + password + "@127.0.0.1/postgres?pool_max_conns=many", "parse connection string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool, err := Open(t.Context(), tt.connString)
			require.Nil(t, pool)
			require.ErrorContains(t, err, tt.wantErr)
			require.NotContains(t, err.Error(), password)
		})
	}
}

func TestPasswordsInFindsEverySpelling(t *testing.T) {
	t.Parallel()
	tests := []struct {
		connString string
		want       []string
	}{
		{"postgres://u:p%40ss@h/db", []string{"p%40ss", "p@ss"}},
		{"postgres://u@h/db", nil},
		{"postgres://h/db", nil},
		{"host=h password=pw user=u", []string{"pw"}},
		{"host=h password = 'p w' user=u", []string{"p w"}},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, passwordsIn(tt.connString), tt.connString)
	}
}
