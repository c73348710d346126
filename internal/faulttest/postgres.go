package faulttest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a private PostgreSQL cluster of one test, which it may stop and start
// again on the same port as often as it likes.
type Postgres struct {
	bin, data string
	port      int
	owner     *syscall.Credential // nil: the binaries run as the current user
}

// StartPostgres creates a cluster in a fresh directory with the machine's newest
// PostgreSQL (initdb: trust, superuser postgres, no fsync), starts it on a free loopback
// port and returns it running. As root, the cluster belongs to the postgres OS user,
// which PostgreSQL requires. The server is stopped and its files removed when the test
// ends.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := postgresBin(t)
	// Not t.TempDir(): its parents are private to the test's user, and the server may run
	// as another.
	root, err := os.MkdirTemp("", "bpfault-pg-")
	if err != nil {
		t.Fatalf("faulttest: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil { //nolint:gosec // G302: the postgres user must pass through it
		t.Fatalf("faulttest: %v", err)
	}
	pg := &Postgres{bin: bin, data: filepath.Join(root, "data"), port: freePort(t)}
	if err := os.Mkdir(pg.data, 0o700); err != nil {
		t.Fatalf("faulttest: %v", err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("faulttest: PostgreSQL will not run as root, and there is no postgres user to run it: %v", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		pg.owner = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(pg.data, int(uid), int(gid)); err != nil {
			t.Fatalf("faulttest: %v", err)
		}
	}
	pg.run(t, "initdb", "-D", pg.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync")
	t.Cleanup(func() {
		// Immediate: the cluster is thrown away, nothing needs flushing.
		if pg.running() {
			_ = pg.command(context.Background(), "pg_ctl", "stop", "-D", pg.data, "-m", "immediate", "-w").Run()
		}
	})
	pg.Start(t)
	return pg
}

// URL is the connection URL of database name on the cluster.
func (pg *Postgres) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.port, name)
}

// Addr is the cluster's host:port, for a proxy in front of it.
func (pg *Postgres) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(pg.port)) }

// CreateDatabase creates an empty database and returns its URL.
func (pg *Postgres) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.URL("postgres"))
	if err != nil {
		t.Fatalf("faulttest: connect to the private cluster: %v", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("faulttest: create database %s: %v", name, err)
	}
	return pg.URL(name)
}

// Start starts the server on its port and waits until it accepts connections.
func (pg *Postgres) Start(t testing.TB) {
	t.Helper()
	// fsync off: the cluster is disposable, and an immediate stop is not a power cut,
	// so the WAL in the page cache still replays on the next start.
	opts := fmt.Sprintf("-p %d -h 127.0.0.1 -k %s -c fsync=off -c full_page_writes=off", pg.port, pg.data)
	pg.run(t, "pg_ctl", "start", "-D", pg.data, "-l", filepath.Join(pg.data, "server.log"), "-w", "-t", "60", "-o", opts)
}

// Stop shuts the server down as an operator or a failover does (pg_ctl stop -m fast):
// every open session is ended with SQLSTATE 57P01 and new connections are refused.
func (pg *Postgres) Stop(t testing.TB) {
	t.Helper()
	pg.run(t, "pg_ctl", "stop", "-D", pg.data, "-m", "fast", "-w", "-t", "60")
}

// Crash stops the server as a crash does (pg_ctl stop -m immediate): no checkpoint, the
// sessions cut without a goodbye; the next start recovers from the WAL.
func (pg *Postgres) Crash(t testing.TB) {
	t.Helper()
	pg.run(t, "pg_ctl", "stop", "-D", pg.data, "-m", "immediate", "-w", "-t", "60")
}

func (pg *Postgres) running() bool {
	return pg.command(context.Background(), "pg_ctl", "status", "-D", pg.data).Run() == nil
}

func (pg *Postgres) run(t testing.TB, tool string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if out, err := pg.command(ctx, tool, args...).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(pg.data, "server.log"))
		t.Fatalf("faulttest: %s %v: %v\n%s\nserver log:\n%s", tool, args, err, out, log)
	}
}

func (pg *Postgres) command(ctx context.Context, tool string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(pg.bin, tool), args...) //nolint:gosec // G204: PostgreSQL's own tools, found below
	// pg_ctl start leaves the server holding no pipe of ours, but give up waiting soon
	// if one does.
	cmd.WaitDelay = 5 * time.Second
	if pg.owner != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.owner}
	}
	return cmd
}

// postgresBin finds the newest installed PostgreSQL server's bin directory.
func postgresBin(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin") // Debian and Ubuntu
	more, _ := filepath.Glob("/usr/pgsql-*/bin")          // RHEL and Fedora (PGDG)
	dirs = append(dirs, more...)
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	t.Fatalf("faulttest: no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin or on PATH")
	return ""
}

// versionOf reads the major version out of a versioned bin directory's path, 0 if none.
func versionOf(dir string) int {
	base := filepath.Base(filepath.Dir(dir))
	for i := range base {
		if n, err := strconv.Atoi(base[i:]); err == nil {
			return n
		}
	}
	return 0
}

// freePort asks the kernel for a loopback port free right now. Another process could
// take it before our server binds it; the start would then fail saying so.
func freePort(t testing.TB) int {
	t.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faulttest: %v", err)
	}
	addr, ok := l.Addr().(*net.TCPAddr)
	_ = l.Close()
	if !ok {
		t.Fatalf("faulttest: a tcp listener has a %T address", l.Addr())
	}
	return addr.Port
}
