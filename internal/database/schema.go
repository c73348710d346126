package database

import (
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
)

// schemaNamePattern admits lower-case names only, so a schema never needs
// quoting in hand-written SQL and cannot collide with another that differs
// only in case; 63 bytes is PostgreSQL's identifier limit.
var schemaNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// ValidateSchemaName reports whether name may be used as a service schema:
// a lower-case letter followed by up to 62 lower-case letters, digits or
// underscores. The pg_ prefix is refused because PostgreSQL reserves it.
func ValidateSchemaName(name string) error {
	if !schemaNamePattern.MatchString(name) {
		return fmt.Errorf("database: invalid schema name %q: want ^[a-z][a-z0-9_]{0,62}$", name)
	}
	if len(name) >= 3 && name[:3] == "pg_" {
		return fmt.Errorf("database: invalid schema name %q: the pg_ prefix is reserved by PostgreSQL", name)
	}
	return nil
}

// searchPath is the search_path a service runs with: its own schema first, so
// unqualified objects are created and found there, then public, where
// database-wide extensions usually live.
func searchPath(schema string) string {
	return pgx.Identifier{schema}.Sanitize() + ", public"
}
