package database

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ErrPostgresNotInstalled is returned by [StartDevCluster] when the machine
// has no PostgreSQL server binaries to run.
var ErrPostgresNotInstalled = errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in " +
	strings.Join(postgresInstallGlobs, ", ") +
	": install them (Debian/Ubuntu: apt-get install postgresql; Fedora: dnf install postgresql-server; macOS: brew install postgresql@17) " +
	"or set BACKPLANE_DATABASE_URL to a server you already run")

// postgresInstallGlobs are where distributions put versioned server
// binaries that are not on PATH (Debian/Ubuntu, then RHEL/Fedora PGDG).
var postgresInstallGlobs = []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"}

// postgresBinaries is one installed PostgreSQL version's bin directory.
type postgresBinaries struct {
	dir   string
	major int
}

func (b postgresBinaries) initdb() string { return filepath.Join(b.dir, "initdb") }
func (b postgresBinaries) pgCtl() string  { return filepath.Join(b.dir, "pg_ctl") }

// postgresBinaryDirs lists the directories that may hold initdb and pg_ctl:
// the one PATH leads to (symlinks resolved) and the distributions' versioned
// directories.
func postgresBinaryDirs() []string {
	var dirs []string
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			p = resolved
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, pattern := range postgresInstallGlobs {
		matches, _ := filepath.Glob(pattern) // the patterns are constant and valid
		dirs = append(dirs, matches...)
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

// choosePostgres picks, among dirs, the binaries to run: those of wantMajor
// when a data directory already exists (a cluster only opens with the
// major version that created it), otherwise the newest version.
func choosePostgres(ctx context.Context, dirs []string, wantMajor int) (postgresBinaries, error) {
	var found []postgresBinaries
	for _, dir := range dirs {
		b := postgresBinaries{dir: dir}
		if !isExecutable(b.initdb()) || !isExecutable(b.pgCtl()) {
			continue
		}
		major, err := postgresMajorVersion(ctx, b.pgCtl())
		if err != nil {
			continue // a broken installation is as good as none
		}
		b.major = major
		found = append(found, b)
	}
	if len(found) == 0 {
		return postgresBinaries{}, ErrPostgresNotInstalled
	}
	slices.SortStableFunc(found, func(a, b postgresBinaries) int { return b.major - a.major })
	if wantMajor == 0 {
		return found[0], nil
	}
	for _, b := range found {
		if b.major == wantMajor {
			return b, nil
		}
	}
	var have []string
	for _, b := range found {
		have = append(have, strconv.Itoa(b.major))
	}
	return postgresBinaries{}, fmt.Errorf("the data directory was created by PostgreSQL %d, but only version(s) %s are installed: install PostgreSQL %d or delete the data directory",
		wantMajor, strings.Join(have, ", "), wantMajor)
}

// versionOutput matches `pg_ctl --version`, e.g. "pg_ctl (PostgreSQL) 15.8
// (Debian 15.8-1)".
var versionOutput = regexp.MustCompile(`\(PostgreSQL\) ([0-9]+)`)

// postgresMajorVersion asks a pg_ctl for its major version. pg_ctl answers
// --version before its refusal to run as root, so this needs no user switch.
func postgresMajorVersion(ctx context.Context, pgCtl string) (int, error) {
	out, err := exec.CommandContext(ctx, pgCtl, "--version").Output()
	if err != nil {
		return 0, err
	}
	m := versionOutput.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("unrecognised version output %q", out)
	}
	return strconv.Atoi(string(m[1]))
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir() && info.Mode().Perm()&0o111 != 0
}
