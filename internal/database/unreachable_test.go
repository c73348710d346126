package database_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/database"
)

func TestUnreachable(t *testing.T) {
	t.Parallel()
	_, refused := pgx.Connect(context.Background(), "postgres://postgres@127.0.0.1:1/none?connect_timeout=2")
	require.Error(t, refused)
	for name, err := range map[string]error{
		"connection refused":   refused,
		"admin shutdown":       &pgconn.PgError{Code: "57P01"},
		"cannot connect now":   fmt.Errorf("store: %w", &pgconn.PgError{Code: "57P03"}),
		"connection exception": &pgconn.PgError{Code: "08006"},
		"too many connections": &pgconn.PgError{Code: "53300"},
	} {
		require.True(t, database.Unreachable(err), name)
	}
	for name, err := range map[string]error{
		"nil":               nil,
		"unique violation":  &pgconn.PgError{Code: "23505"},
		"syntax error":      &pgconn.PgError{Code: "42601"},
		"no rows":           pgx.ErrNoRows,
		"caller canceled":   fmt.Errorf("query: %w", context.Canceled),
		"caller's deadline": context.DeadlineExceeded,
		"a bug":             errors.New("nil map"),
	} {
		require.False(t, database.Unreachable(err), name)
	}
}
