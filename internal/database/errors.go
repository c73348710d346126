package database

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	// ErrNotFound means the row a store looked for does not exist.
	ErrNotFound = errors.New("not found")

	// ErrConflict means a write collided with existing data: a unique or
	// exclusion constraint was violated, or a foreign key pointed at a row
	// that does not exist (or still has dependents).
	ErrConflict = errors.New("conflict")
)

// SQLSTATE codes that mean the caller asked for something the data forbids,
// as opposed to the database failing. See
// https://www.postgresql.org/docs/current/errcodes-appendix.html.
const (
	codeForeignKeyViolation = "23503"
	codeUniqueViolation     = "23505"
	codeExclusionViolation  = "23P01"
)

// TranslateError maps driver errors to this package's sentinels, so stores
// translate once, at the driver boundary, and callers test with errors.Is:
//
//   - pgx.ErrNoRows becomes ErrNotFound;
//   - unique, exclusion and foreign-key violations become ErrConflict.
//
// The driver error stays wrapped, so errors.As still finds the
// *pgconn.PgError (for its ConstraintName, say). Its text names tables and
// constraints, which is why the layer that turns errors into API responses
// must not copy the message to clients. Any other error, and nil, is
// returned unchanged.
func TranslateError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeUniqueViolation, codeForeignKeyViolation, codeExclusionViolation:
			return fmt.Errorf("%w: %w", ErrConflict, err)
		}
	}
	return err
}
