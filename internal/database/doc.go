// Package database connects Backplane services to PostgreSQL and keeps their
// schemas migrated.
//
// Every service owns exactly one PostgreSQL schema. A service opens a pool
// with [Open], brings its schema up to date at startup with [Migrate], and
// translates driver errors into [ErrNotFound] and [ErrConflict] with
// [TranslateError] at its store boundary, so that nothing above the store
// ever sees a pgx type.
//
// [StartDevCluster] exists for `backplane dev` alone: it runs a private
// PostgreSQL server from the binaries installed on the machine when no
// server is available.
package database
