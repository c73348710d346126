package database

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// maxSocketDirLen keeps <dir>/.s.PGSQL.<port> within the smallest unix
// socket path limit PostgreSQL runs on (103 bytes on macOS, 107 on Linux).
const maxSocketDirLen = 103 - len("/.s.PGSQL.65535")

// DevCluster is a private PostgreSQL server run from the machine's own
// PostgreSQL binaries, for `backplane dev` when no server answers at the
// usual address. It is for development only: it trusts every local
// connection without a password, listens on 127.0.0.1 only, and its data
// directory is disposable.
//
// The server keeps running if the process that started it dies without
// calling Stop; the next StartDevCluster on the same directory stops it and
// starts afresh.
type DevCluster struct {
	dataDir string
	url     string
	bin     postgresBinaries
	owner   *clusterOwner // nil when the binaries run as the current user
}

// StartDevCluster starts a PostgreSQL server whose files live in dataDir,
// creating the cluster with initdb on first use (superuser postgres, trust
// authentication, UTF8, C locale). It chooses the newest installed
// PostgreSQL, or the version that created an existing dataDir, and listens
// on a free port of 127.0.0.1, with its unix socket and its log
// (server.log) inside dataDir. As root, it hands dataDir to the postgres
// user and runs the binaries as that user, which PostgreSQL requires; every
// directory above dataDir must then be searchable by postgres.
//
// It returns ErrPostgresNotInstalled when no server binaries are found. The
// caller must call Stop.
func StartDevCluster(ctx context.Context, dataDir string) (*DevCluster, error) {
	c, err := newDevCluster(ctx, dataDir)
	if err != nil {
		return nil, fmt.Errorf("database: dev cluster in %s: %w", dataDir, err)
	}
	if err := c.start(ctx); err != nil {
		return nil, fmt.Errorf("database: dev cluster in %s: %w", c.dataDir, err)
	}
	return c, nil
}

// URL is the connection URL of the running server, for [Open].
func (c *DevCluster) URL() string { return c.url }

// Stop shuts the server down (pg_ctl stop -m fast: open sessions are
// disconnected, nothing is lost). Stopping a stopped server does nothing.
func (c *DevCluster) Stop(ctx context.Context) error {
	if !c.running(ctx) {
		return nil
	}
	if _, err := c.run(ctx, c.bin.pgCtl(), "stop", "-D", c.dataDir, "-m", "fast", "-w", "-t", "60"); err != nil {
		return fmt.Errorf("database: stop dev cluster in %s: %w", c.dataDir, err)
	}
	return nil
}

// newDevCluster prepares dataDir and picks the binaries, without starting
// anything.
func newDevCluster(ctx context.Context, dataDir string) (*DevCluster, error) {
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	if len(dataDir) > maxSocketDirLen {
		return nil, fmt.Errorf("path is %d bytes long, and the unix socket inside it must fit in %d: choose a shorter one", len(dataDir), maxSocketDirLen)
	}
	owner, err := ownerForCluster()
	if err != nil {
		return nil, err
	}
	major, err := clusterMajorVersion(dataDir)
	if err != nil {
		return nil, err
	}
	bin, err := choosePostgres(ctx, postgresBinaryDirs(), major)
	if err != nil {
		return nil, err
	}
	// The parents are made traversable (0755, where gosec asks for 0750): the server runs
	// as another user when we are root, and must reach its own directory through them.
	if err := os.MkdirAll(filepath.Dir(dataDir), 0o755); err != nil { //nolint:gosec // G301: see above
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	if owner != nil {
		if err := owner.claim(dataDir); err != nil {
			return nil, fmt.Errorf("hand the directory to the %s user: %w", owner.name, err)
		}
		if err := owner.canReach(dataDir); err != nil {
			return nil, err
		}
	}
	return &DevCluster{dataDir: dataDir, bin: bin, owner: owner}, nil
}

// start creates the cluster if needed and starts the server.
func (c *DevCluster) start(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		// --no-sync: a dev cluster is disposable, and skipping the flush
		// makes the first start seconds faster on slow disks.
		if _, err := c.run(ctx, c.bin.initdb(), "-D", c.dataDir, "-A", "trust", "-U", "postgres",
			"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
			return fmt.Errorf("initdb: %w", err)
		}
	}
	if c.running(ctx) {
		// Left over from a run that never called Stop. Its port may be taken
		// by now, so restart it rather than adopt it.
		if err := c.Stop(ctx); err != nil {
			return err
		}
	}

	port, err := freeLoopbackPort(ctx)
	if err != nil {
		return fmt.Errorf("find a free port: %w", err)
	}
	// pg_ctl hands -o to a shell, so the directory is shell-quoted.
	serverOpts := fmt.Sprintf("-p %d -h 127.0.0.1 -k %s", port, shellQuote(c.dataDir))
	logFile := filepath.Join(c.dataDir, "server.log")
	if _, err := c.run(ctx, c.bin.pgCtl(), "start", "-D", c.dataDir, "-l", logFile, "-w", "-t", "60", "-o", serverOpts); err != nil {
		return fmt.Errorf("start server: %w%s", err, logTail(logFile))
	}
	c.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return nil
}

// running reports whether a server is running on the data directory
// (pg_ctl status exits 0 only then).
func (c *DevCluster) running(ctx context.Context) bool {
	return c.command(ctx, c.bin.pgCtl(), "status", "-D", c.dataDir).Run() == nil
}

// run runs a PostgreSQL binary and returns its output, which on failure is
// folded into the error because it is where initdb and pg_ctl say why.
func (c *DevCluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := c.command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", filepath.Base(name), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// command builds an exec.Cmd that runs as the cluster's owner.
func (c *DevCluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	// name is a binary this package found among the PostgreSQL installations, never
	// anything a request supplied.
	cmd := exec.CommandContext(ctx, name, args...) //nolint:gosec // G204: see above
	// pg_ctl start redirects the server's output to the log file, so no
	// child should keep our pipes open; if one does, give up waiting soon.
	cmd.WaitDelay = 5 * time.Second
	if c.owner != nil {
		c.owner.runAs(cmd)
	}
	return cmd
}

// clusterMajorVersion returns the major version recorded in an existing
// cluster's PG_VERSION file, or 0 when dataDir holds no cluster yet.
func clusterMajorVersion(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION")) //nolint:gosec // G304: the operator's BACKPLANE_DATA_DIR, not a request's
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	major, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("unreadable PG_VERSION %q", bytes.TrimSpace(b))
	}
	return major, nil
}

// freeLoopbackPort asks the kernel for a port that is free right now. Another
// process could take it before the server binds it; for a dev server that
// small race is acceptable, and the start error would say so.
func freeLoopbackPort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	addr, ok := l.Addr().(*net.TCPAddr)
	if err := l.Close(); err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("a tcp listener has a %T address", l.Addr())
	}
	return addr.Port, nil
}

// shellQuote quotes s as a single POSIX shell word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// logTail returns the end of the server log, formatted to follow an error,
// or nothing if the log cannot be read.
func logTail(path string) string {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the server log inside the operator's data directory
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	lines = lines[max(0, len(lines)-10):]
	return "\nlast lines of " + path + ":\n" + strings.Join(lines, "\n")
}
