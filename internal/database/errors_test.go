package database

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

func TestTranslateError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	_, err := b.pool.Exec(ctx, `
		CREATE TABLE owners (id int PRIMARY KEY, email text UNIQUE);
		CREATE TABLE pets (id int PRIMARY KEY, owner_id int NOT NULL REFERENCES owners (id));
		INSERT INTO owners VALUES (1, 'a@example.com');
	`)
	require.NoError(t, err)

	t.Run("no rows is ErrNotFound", func(t *testing.T) {
		var id int
		err := TranslateError(b.pool.QueryRow(ctx, "SELECT id FROM owners WHERE id = 42").Scan(&id))
		require.ErrorIs(t, err, ErrNotFound)
		require.ErrorIs(t, err, pgx.ErrNoRows)
		require.NotErrorIs(t, err, ErrConflict)
	})

	t.Run("unique violation is ErrConflict", func(t *testing.T) {
		_, err := b.pool.Exec(ctx, "INSERT INTO owners VALUES (2, 'a@example.com')")
		err = TranslateError(err)
		require.ErrorIs(t, err, ErrConflict)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, "the driver error stays reachable")
		require.Equal(t, "owners_email_key", pgErr.ConstraintName)
	})

	t.Run("foreign key violation is ErrConflict", func(t *testing.T) {
		_, err := b.pool.Exec(ctx, "INSERT INTO pets VALUES (1, 42)")
		require.ErrorIs(t, TranslateError(err), ErrConflict)
	})

	t.Run("other errors pass through", func(t *testing.T) {
		_, err := b.pool.Exec(ctx, "SELECT * FROM no_such_table")
		translated := TranslateError(err)
		require.Equal(t, err, translated)
		require.NotErrorIs(t, translated, ErrNotFound)
		require.NotErrorIs(t, translated, ErrConflict)

		other := errors.New("boom")
		require.Equal(t, other, TranslateError(other))
	})

	t.Run("nil stays nil", func(t *testing.T) {
		require.NoError(t, TranslateError(nil))
	})
}
