package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// How test databases go away.
//
// Dropping a database costs PostgreSQL (15) an immediate checkpoint, a few hundred
// milliseconds, and a test's cleanup runs while the test still holds one of go test's few
// parallel slots (-parallel defaults to the number of cores). So a test's database is
// dropped in the background, and the next test starts at once. Drops are issued together,
// because checkpoints requested at the same time are done as one. The backlog is bounded
// (maxUndropped): a cleanup that finds it full waits, so that a process leaves at most
// that many databases behind when it exits, and a later test process's sweep drops them.
//
// To tell a leftover from a database in use, each process holds an advisory lock for its
// whole life on a connection of its own, and its databases carry the lock's id in their
// names: a test database whose owner's lock is no longer held belongs to a process that is
// gone. Databases named some other way (by an older dbtest) are left alone.

// ownerLockClass is the first half of every owner lock's key
// (0x62707464 is "bptd" in ASCII); the second half is the owner id.
const ownerLockClass int32 = 0x62707464

// concurrentDrops is how many leftovers a sweep drops at once: enough for their
// checkpoints to coalesce, few enough to leave connections for the tests.
const concurrentDrops = 4

// maxUndropped is how many of its databases a process lets be dropped in the background
// before a test's cleanup waits too: what a process may leave behind when it exits.
const maxUndropped = 8

// server is this process's link to the test server: the connections it administers
// databases through, and its identity among the test processes sharing the server.
type server struct {
	admin *pgxpool.Pool // to the administrative database, for CREATE and DROP
	owner string        // id of this process, in the names of its databases
	// ownerConn holds the owner lock. It is kept here, never closed, so that it lives as
	// long as the process: a collected connection is closed, and would let the lock go.
	ownerConn *pgx.Conn

	// dropDatabase drops one database; a field so that a test can hold drops back.
	dropDatabase func(ctx context.Context, name string) error

	mu        sync.Mutex
	undropped int        // databases being dropped
	dropped   *sync.Cond // on mu: undropped went down

	stamped sync.Map // names of the templates whose use this process has recorded
}

// sharedServer connects once per test process: the owner lock must live as long as the
// process, so this is the one place dbtest keeps state across tests.
var sharedServer = sync.OnceValues(connectServer)

func connectServer() (*server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(ServerURL())
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", redacted(ServerURL()), err)
	}
	// Room for every drop in flight, and for the creates of the tests running meanwhile.
	cfg.MaxConns = maxUndropped + 4
	admin, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ownerConn, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		admin.Close()
		return nil, err
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	owner := hex.EncodeToString(id[:])
	// The lock's second half is the id's 32 bits, which the sweep reads back as hex.
	if _, err := ownerConn.Exec(ctx, "SELECT pg_advisory_lock($1, ('x' || $2::text)::bit(32)::int)", ownerLockClass, owner); err != nil {
		admin.Close()
		_ = ownerConn.Close(ctx)
		return nil, fmt.Errorf("take owner lock: %w", err)
	}
	s := &server{admin: admin, owner: owner, ownerConn: ownerConn}
	s.dropDatabase = s.execDrop
	s.dropped = sync.NewCond(&s.mu)
	// In the background, like the drops: no test waits for it.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := s.sweep(ctx, time.Now()); err != nil {
			// Leftovers cost disk space, not correctness: carry on, and say so once.
			fmt.Printf("dbtest: removing leftover test databases: %v\n", err)
		}
	}()
	return s, nil
}

// testDatabasePrefix starts the name of every test database, and nothing else's.
const testDatabasePrefix = "bptest_"

// newDatabaseName is a unique name for a database of this process.
func (s *server) newDatabaseName() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return testDatabasePrefix + s.owner + "_" + hex.EncodeToString(b[:])
}

// databaseOwner returns the owner id in a test database's name.
func databaseOwner(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, testDatabasePrefix)
	if !ok {
		return "", false
	}
	owner, _, ok := strings.Cut(rest, "_")
	if !ok || len(owner) != 8 {
		return "", false
	}
	if _, err := hex.DecodeString(owner); err != nil {
		return "", false
	}
	return owner, true
}

// dropLater drops database name in the background, waiting only while the backlog is
// full. Every drop is issued at once, rather than queued behind others, so that drops
// in flight together share their checkpoints.
func (s *server) dropLater(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.undropped++
	go s.drop(name)
	for s.undropped > maxUndropped {
		s.dropped.Wait()
	}
}

// drop drops database name and lets a waiting dropLater go on.
func (s *server) drop(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// A failure leaves the database to a later process's sweep; there is no test left
	// to report it to.
	_ = s.dropDatabase(ctx, name)
	s.mu.Lock()
	s.undropped--
	s.dropped.Broadcast()
	s.mu.Unlock()
}

// dropAll drops databases, concurrentDrops at a time.
func (s *server) dropAll(ctx context.Context, names []string) error {
	errs := make([]error, len(names))
	slots := make(chan struct{}, concurrentDrops)
	var wg sync.WaitGroup
	for i, name := range names {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			errs[i] = s.dropDatabase(ctx, name)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// execDrop drops database name. FORCE, because what is left connected to a test's
// database (a server the test did not stop, the sessions of a process that died) must
// not keep it.
func (s *server) execDrop(ctx context.Context, name string) error {
	if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop %s: %w", name, err)
	}
	return nil
}

// sweep drops the test databases of processes that are gone and templates unused for
// staleAfter. Databases it cannot attribute or date are left alone.
func (s *server) sweep(ctx context.Context, now time.Time) error {
	conn, err := s.admin.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	// One process sweeps at a time; the others wait, then find little left to do.
	return withAdvisoryLock(ctx, conn, sweepKey, func() error {
		return s.sweepLocked(ctx, conn.Conn(), now)
	})
}

func (s *server) sweepLocked(ctx context.Context, conn *pgx.Conn, now time.Time) error {
	rows, err := conn.Query(ctx, `SELECT d.datname, d.datistemplate, COALESCE(shobj_description(d.oid, 'pg_database'), '')
		FROM pg_database d WHERE starts_with(d.datname, $1) OR starts_with(d.datname, $2)`, testDatabasePrefix, templatePrefix)
	if err != nil {
		return fmt.Errorf("list databases: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[listedDatabase])
	if err != nil {
		return fmt.Errorf("list databases: %w", err)
	}
	rows, err = conn.Query(ctx, `SELECT lpad(to_hex(objid::int8), 8, '0') FROM pg_locks
		WHERE locktype = 'advisory' AND classid::int8 = $1 AND objsubid = 2 AND granted`, int64(ownerLockClass))
	if err != nil {
		return fmt.Errorf("list test processes: %w", err)
	}
	owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list test processes: %w", err)
	}
	live := make(map[string]bool, len(owners))
	for _, o := range owners {
		live[o] = true
	}

	var errs []error
	var drop []string
	for _, db := range found {
		if !db.leftOver(live, now) {
			continue
		}
		if db.IsTemplate {
			if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db.Name}.Sanitize()+" IS_TEMPLATE false"); err != nil {
				errs = append(errs, fmt.Errorf("drop %s: %w", db.Name, err))
				continue
			}
		}
		drop = append(drop, db.Name)
	}
	return errors.Join(append(errs, s.dropAll(ctx, drop))...)
}

// listedDatabase is a row of the sweep's listing.
type listedDatabase struct {
	Name       string
	IsTemplate bool
	Comment    string
}

// leftOver reports whether the sweep should drop the database, given the owner ids of
// the live test processes.
func (d listedDatabase) leftOver(live map[string]bool, now time.Time) bool {
	if strings.HasPrefix(d.Name, testDatabasePrefix) {
		owner, ok := databaseOwner(d.Name)
		return ok && !live[owner]
	}
	stamp, ok := strings.CutPrefix(d.Comment, usedCommentPrefix)
	if !ok {
		return false
	}
	lastUsed, err := time.Parse(time.RFC3339, stamp)
	return err == nil && now.Sub(lastUsed) > staleAfter
}

// withAdvisoryLock runs fn while conn's session holds advisory lock key. If the unlock
// fails the connection is closed, which releases the lock, rather than returned to the
// pool still holding it.
func withAdvisoryLock(ctx context.Context, conn *pgxpool.Conn, key int64, fn func() error) error {
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		return fmt.Errorf("take advisory lock: %w", err)
	}
	err := fn()
	unlockCtx := context.WithoutCancel(ctx)
	if _, unlockErr := conn.Exec(unlockCtx, "SELECT pg_advisory_unlock($1)", key); unlockErr != nil {
		_ = conn.Conn().Close(unlockCtx)
	}
	return err
}
