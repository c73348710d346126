package database

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
)

// migrationFileName is NNNN_name.up.sql or NNNN_name.down.sql: at least four
// digits so the files list in order, a lower-case name, a direction.
var migrationFileName = regexp.MustCompile(`^([0-9]{4,})_([a-z0-9_]+)\.(up|down)\.sql$`)

// migration is one numbered step of a service's schema history.
type migration struct {
	version int64
	name    string
	up      string
	down    string
}

// label names a migration the way its files are named, for error messages.
func (m migration) label() string {
	return fmt.Sprintf("%04d_%s", m.version, m.name)
}

// loadMigrations reads the migrations at the root of fsys, sorted by
// version. Every version needs both an up and a down file with the same
// name: a missing down file is caught by the first test run rather than
// during an incident. Any other .sql file is an error, because a misspelt
// migration would otherwise be skipped silently; files of other types are
// ignored.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	if fsys == nil {
		// A service without tables yet still gets its schema and version table.
		return nil, nil
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("database: read migrations: %w", err)
	}
	byVersion := make(map[int64]*migration)
	seen := make(map[string]string) // version and direction → file name
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		parts := migrationFileName.FindStringSubmatch(e.Name())
		if parts == nil {
			return nil, fmt.Errorf("database: migration file %q: want NNNN_name.up.sql or NNNN_name.down.sql", e.Name())
		}
		version, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil || version < 1 {
			return nil, fmt.Errorf("database: migration file %q: version must be a positive number", e.Name())
		}
		key := fmt.Sprintf("%d.%s", version, parts[3])
		if other, dup := seen[key]; dup {
			return nil, fmt.Errorf("database: migration files %q and %q have the same version and direction", other, e.Name())
		}
		seen[key] = e.Name()
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("database: read migration: %w", err)
		}

		m, ok := byVersion[version]
		if !ok {
			m = &migration{version: version, name: parts[2]}
			byVersion[version] = m
		}
		if m.name != parts[2] {
			return nil, fmt.Errorf("database: migration %04d has two names, %q and %q", version, m.name, parts[2])
		}
		if parts[3] == "up" {
			m.up = string(body)
		} else {
			m.down = string(body)
		}
	}
	if len(byVersion) == 0 {
		return nil, errors.New("database: no migrations found: the fs.FS must hold NNNN_name.up.sql files at its root (use fs.Sub for an embedded directory)")
	}

	migrations := make([]migration, 0, len(byVersion))
	for _, m := range byVersion {
		if m.up == "" || m.down == "" {
			return nil, fmt.Errorf("database: migration %s needs both an .up.sql and a .down.sql file, neither empty", m.label())
		}
		migrations = append(migrations, *m)
	}
	slices.SortFunc(migrations, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	return migrations, nil
}
