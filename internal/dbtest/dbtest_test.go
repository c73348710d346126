package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// childEnv, when set, makes the test binary a child of TestTemplateIsBuiltOnceAcrossProcesses
// instead of running the tests: go test runs packages in parallel processes, and only
// processes show that the build lock works across them.
const childEnv = "DBTEST_CHILD"

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		if err := runChild(args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// widgetMigrations is a migration directory no other test run has seen, so each test
// builds its own template; nonce makes it unique, and table names the one table it creates.
func widgetMigrations(nonce, table string) fstest.MapFS {
	return fstest.MapFS{
		"0001_widgets.up.sql":   {Data: []byte("-- " + nonce + "\nCREATE TABLE " + table + " (id bigint PRIMARY KEY, name text NOT NULL);")},
		"0001_widgets.down.sql": {Data: []byte("DROP TABLE " + table + ";")},
	}
}

// uniqueSpec is a template spec that only this test uses, dropped when the test ends.
func uniqueSpec(t *testing.T, table string) (*templateSpec, fstest.MapFS) {
	t.Helper()
	migrations := widgetMigrations(rand.Text(), table)
	spec := &templateSpec{schemas: []schemaMigrations{{schema: "widgets", migrations: migrations}}}
	dropTemplateAtEnd(t, spec)
	return spec, migrations
}

// dropTemplateAtEnd drops spec's template when the test ends, so test runs do not leave
// their one-off templates for the sweep.
func dropTemplateAtEnd(t *testing.T, spec *templateSpec) {
	t.Helper()
	tmpl, err := spec.name()
	require.NoError(t, err)
	t.Cleanup(func() { dropTemplate(t, tmpl) })
}

func dropTemplate(t *testing.T, tmpl string) {
	t.Helper()
	admin := adminConn(t)
	ident := pgx.Identifier{tmpl}.Sanitize()
	if ok, err := databaseExists(context.Background(), admin, tmpl); err != nil || !ok {
		require.NoError(t, err)
		return
	}
	_, err := admin.Exec(context.Background(), "ALTER DATABASE "+ident+" IS_TEMPLATE false")
	require.NoError(t, err)
	_, err = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
	require.NoError(t, err)
}

func adminConn(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), ServerURL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// newPool is NewPool for a spec built by hand.
func newPool(t *testing.T, spec *templateSpec) *pgxpool.Pool {
	t.Helper()
	var opts []Option
	for _, sm := range spec.schemas[1:] {
		opts = append(opts, WithMigrations(sm.schema, sm.migrations))
	}
	for _, st := range spec.steps {
		opts = append(opts, WithStep(st.key, st.run))
	}
	return NewPool(t, spec.schemas[0].schema, spec.schemas[0].migrations, opts...)
}

func tableExists(t *testing.T, pool *pgxpool.Pool, schema, table string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, pool.QueryRow(context.Background(),
		"SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2)", schema, table).Scan(&ok))
	return ok
}

func count(t *testing.T, pool *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

func TestNewPoolClonesAMigratedTemplate(t *testing.T) {
	t.Parallel()
	spec, _ := uniqueSpec(t, "widgets")
	pool := newPool(t, spec)

	// The service's unqualified names resolve in its schema.
	_, err := pool.Exec(context.Background(), "INSERT INTO widgets (id, name) VALUES (1, 'a')")
	require.NoError(t, err)
	require.True(t, tableExists(t, pool, "widgets", "widgets"))
	var versions int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM widgets.schema_migrations").Scan(&versions))
	require.Equal(t, 1, versions)

	// The test's database is a copy: the template is a separate database that refuses
	// connections, so it can always be copied.
	tmpl, err := spec.name()
	require.NoError(t, err)
	var current string
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT current_database()").Scan(&current))
	require.NotEqual(t, tmpl, current)
	var isTemplate, allowsConn bool
	require.NoError(t, adminConn(t).QueryRow(context.Background(),
		"SELECT datistemplate, datallowconn FROM pg_database WHERE datname = $1", tmpl).Scan(&isTemplate, &allowsConn))
	require.True(t, isTemplate)
	require.False(t, allowsConn)
}

func TestDatabasesFromOneTemplateAreIsolated(t *testing.T) {
	t.Parallel()
	spec, _ := uniqueSpec(t, "widgets")
	first, second := newPool(t, spec), newPool(t, spec)

	_, err := first.Exec(context.Background(), "INSERT INTO widgets (id, name) VALUES (1, 'a')")
	require.NoError(t, err)
	require.Equal(t, 1, count(t, first, "widgets"))
	require.Equal(t, 0, count(t, second, "widgets"))
	// And the template itself was not written through a clone.
	require.Equal(t, 0, count(t, newPool(t, spec), "widgets"))
}

func TestChangedMigrationsBuildANewTemplate(t *testing.T) {
	t.Parallel()
	before, migrations := uniqueSpec(t, "widgets")
	nameBefore, err := before.name()
	require.NoError(t, err)
	require.True(t, tableExists(t, newPool(t, before), "widgets", "widgets"))

	// The same file, edited.
	edited := fstest.MapFS{}
	for name, f := range migrations {
		edited[name] = f
	}
	edited["0001_widgets.up.sql"] = &fstest.MapFile{Data: append(append([]byte{}, migrations["0001_widgets.up.sql"].Data...),
		[]byte("\nCREATE TABLE gadgets (id bigint PRIMARY KEY);")...)}
	after := &templateSpec{schemas: []schemaMigrations{{schema: "widgets", migrations: edited}}}
	dropTemplateAtEnd(t, after)
	nameAfter, err := after.name()
	require.NoError(t, err)
	require.NotEqual(t, nameBefore, nameAfter)

	pool := newPool(t, after)
	require.True(t, tableExists(t, pool, "widgets", "gadgets"))
	require.False(t, tableExists(t, newPool(t, before), "widgets", "gadgets"), "the old template is still the old schema")

	// A step's key is part of the identity too, and the name does not depend on anything else.
	again, err := (&templateSpec{schemas: []schemaMigrations{{schema: "widgets", migrations: edited}}}).name()
	require.NoError(t, err)
	require.Equal(t, nameAfter, again)
	withStep, err := (&templateSpec{
		schemas: []schemaMigrations{{schema: "widgets", migrations: edited}},
		steps:   []templateStep{{key: "river 6"}},
	}).name()
	require.NoError(t, err)
	require.NotEqual(t, nameAfter, withStep)
	require.LessOrEqual(t, len(withStep+buildSuffix), 63, "PostgreSQL truncates longer names")
}

func TestWithMigrationsAndWithStepBuildSeveralSchemas(t *testing.T) {
	t.Parallel()
	nonce := rand.Text()
	var stepRan atomic.Bool
	spec := &templateSpec{
		schemas: []schemaMigrations{
			{schema: "widgets", migrations: widgetMigrations(nonce, "widgets")},
			{schema: "jobs", migrations: widgetMigrations(nonce, "queue")},
		},
		steps: []templateStep{{key: "seed " + nonce, run: func(ctx context.Context, pool *pgxpool.Pool) error {
			stepRan.Store(true)
			// Unqualified, so it shows the step runs with the main schema's search_path.
			_, err := pool.Exec(ctx, "INSERT INTO widgets (id, name) VALUES (1, 'seeded by the step')")
			return err
		}}},
	}
	dropTemplateAtEnd(t, spec)
	pool := newPool(t, spec)

	require.True(t, stepRan.Load())
	require.True(t, tableExists(t, pool, "widgets", "widgets"))
	require.True(t, tableExists(t, pool, "jobs", "queue"))
	require.Equal(t, 1, count(t, pool, "jobs.schema_migrations"))
	require.Equal(t, 1, count(t, pool, "widgets"), "the step's row is in every clone")
}

func TestCloneRebuildsATemplateDroppedMeanwhile(t *testing.T) {
	t.Parallel()
	spec, _ := uniqueSpec(t, "widgets")
	tmpl, err := spec.name()
	require.NoError(t, err)
	newPool(t, spec)

	// What a sweep in another process may do between this process's check and its copy.
	dropTemplate(t, tmpl)
	srv := sharedServerOf(t)
	name := srv.newDatabaseName()
	require.NoError(t, srv.cloneTemplate(context.Background(), spec, name))
	t.Cleanup(func() { srv.dropLater(name) })

	ok, err := databaseExists(context.Background(), adminConn(t), tmpl)
	require.NoError(t, err)
	require.True(t, ok)
}

func TestDatabaseIsDroppedAfterTheTest(t *testing.T) {
	t.Parallel()
	spec, _ := uniqueSpec(t, "widgets")
	var name string
	t.Run("user", func(t *testing.T) {
		require.NoError(t, newPool(t, spec).QueryRow(context.Background(), "SELECT current_database()").Scan(&name))
	})
	admin := adminConn(t)
	require.Eventually(t, func() bool {
		ok, err := databaseExists(context.Background(), admin, name)
		return err == nil && !ok
	}, time.Minute, 50*time.Millisecond)
}

func sharedServerOf(t *testing.T) *server {
	t.Helper()
	srv, err := sharedServer()
	require.NoError(t, err)
	return srv
}

func TestCloneWaitsForASessionToLeaveTheTemplate(t *testing.T) {
	t.Parallel()
	spec, _ := uniqueSpec(t, "widgets")
	tmpl, err := spec.name()
	require.NoError(t, err)
	newPool(t, spec)

	// Someone connects to the template anyway (a developer's psql, once let in).
	admin := adminConn(t)
	_, err = admin.Exec(context.Background(), "ALTER DATABASE "+pgx.Identifier{tmpl}.Sanitize()+" WITH ALLOW_CONNECTIONS true")
	require.NoError(t, err)
	tmplURL, err := databaseURL(tmpl)
	require.NoError(t, err)
	visitor, err := pgx.Connect(context.Background(), tmplURL)
	require.NoError(t, err)
	const stay = 400 * time.Millisecond
	start := time.Now()
	go func() {
		time.Sleep(stay)
		_ = visitor.Close(context.Background())
	}()

	pool := newPool(t, spec)
	require.GreaterOrEqual(t, time.Since(start), stay, "the copy cannot have started while the visitor was connected")
	require.True(t, tableExists(t, pool, "widgets", "widgets"))
}

func TestTemplateIsBuiltOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	// The children record each build in a table of this database.
	witnessURL := NewDatabase(t)
	witness, err := pgx.Connect(context.Background(), witnessURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = witness.Close(context.Background()) })
	_, err = witness.Exec(context.Background(), "CREATE TABLE builds (pid int NOT NULL)")
	require.NoError(t, err)

	nonce := rand.Text()
	spec := childSpec(nonce, witnessURL)
	dropTemplateAtEnd(t, spec)

	self, err := os.Executable()
	require.NoError(t, err)
	const children = 4
	cmds := make([]*exec.Cmd, children)
	for i := range cmds {
		cmds[i] = exec.CommandContext(t.Context(), self)
		cmds[i].Env = append(os.Environ(), childEnv+"="+nonce+" "+witnessURL)
	}
	outputs := make([][]byte, children)
	errs := make([]error, children)
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		wg.Go(func() { outputs[i], errs[i] = cmd.CombinedOutput() })
	}
	wg.Wait()
	for i := range cmds {
		require.NoError(t, errs[i], "child %d: %s", i, outputs[i])
	}

	var builds int
	require.NoError(t, witness.QueryRow(context.Background(), "SELECT count(*) FROM builds").Scan(&builds))
	require.Equal(t, 1, builds, "one process builds, the others wait and clone")
}

// childSpec is the template the children of TestTemplateIsBuiltOnceAcrossProcesses clone:
// its step records the build in the witness database, and lingers, so that the other
// children arrive while it is being built.
func childSpec(nonce, witnessURL string) *templateSpec {
	return &templateSpec{
		schemas: []schemaMigrations{{schema: "widgets", migrations: widgetMigrations(nonce, "widgets")}},
		steps: []templateStep{{key: "witness", run: func(ctx context.Context, _ *pgxpool.Pool) error {
			witness, err := pgx.Connect(ctx, witnessURL)
			if err != nil {
				return err
			}
			defer func() { _ = witness.Close(context.WithoutCancel(ctx)) }()
			if _, err := witness.Exec(ctx, "INSERT INTO builds (pid) VALUES ($1)", os.Getpid()); err != nil {
				return err
			}
			time.Sleep(500 * time.Millisecond)
			return nil
		}}},
	}
}

// runChild clones the template of childSpec, as a test process of its own would.
func runChild(args string) error {
	nonce, witnessURL, ok := strings.Cut(args, " ")
	if !ok {
		return fmt.Errorf("%s=%q: want nonce and witness URL", childEnv, args)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := sharedServer()
	if err != nil {
		return err
	}
	name := srv.newDatabaseName()
	if err := srv.cloneTemplate(ctx, childSpec(nonce, witnessURL), name); err != nil {
		return err
	}
	_, err = srv.admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

func TestSweepDropsLeftoversOnly(t *testing.T) {
	t.Parallel()
	srv := sharedServerOf(t)
	admin := adminConn(t)
	now := time.Now()
	create := func(name string) {
		_, err := admin.Exec(context.Background(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		require.NoError(t, err)
		t.Cleanup(func() {
			_, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize())
			require.NoError(t, err)
		})
	}
	nonce := strings.ToLower(rand.Text()[:8])
	staleTemplate := templatePrefix + "sweep_stale_" + nonce
	freshTemplate := templatePrefix + "sweep_fresh_" + nonce
	// No process holds the owner lock of an id made up now.
	orphan := testDatabasePrefix + hex.EncodeToString([]byte(nonce[:4])) + "_" + nonce
	mine := srv.newDatabaseName()
	for _, name := range []string{staleTemplate, freshTemplate, orphan, mine} {
		create(name)
	}
	require.NoError(t, stampUse(context.Background(), admin, staleTemplate, now.Add(-staleAfter-time.Minute)))
	require.NoError(t, stampUse(context.Background(), admin, freshTemplate, now.Add(-staleAfter+time.Minute)))
	_, err := admin.Exec(context.Background(), "ALTER DATABASE "+pgx.Identifier{staleTemplate}.Sanitize()+" IS_TEMPLATE true")
	require.NoError(t, err)

	require.NoError(t, srv.sweep(context.Background(), now))

	for name, want := range map[string]bool{staleTemplate: false, freshTemplate: true, orphan: false, mine: true} {
		ok, err := databaseExists(context.Background(), admin, name)
		require.NoError(t, err)
		require.Equal(t, want, ok, name)
	}
}

func TestLeftOverSparesWhatItCannotPlace(t *testing.T) {
	t.Parallel()
	now := time.Now()
	live := map[string]bool{"0a0b0c0d": true}
	for _, db := range []listedDatabase{
		{Name: "bptest_0123456789ab"},        // named by an older dbtest, maybe running now
		{Name: "bptest_0a0b0c0d_0123456789"}, // a live process's
		{Name: "bptest_zzzzzzzz_0123456789"},
		{Name: templatePrefix + "x_0123456789abcdef"},
		{Name: templatePrefix + "x_0123456789abcdef", Comment: "someone else's note"},
		{Name: templatePrefix + "x_0123456789abcdef", Comment: usedCommentPrefix + "yesterday"},
	} {
		require.False(t, db.leftOver(live, now), db)
	}
	require.True(t, listedDatabase{Name: "bptest_0a0b0c0e_0123456789"}.leftOver(live, now))
}

func TestDropLaterBoundsTheBacklog(t *testing.T) {
	t.Parallel()
	// A server whose drops wait to be let go.
	release := make(chan struct{})
	var started atomic.Int32
	s := &server{dropDatabase: func(context.Context, string) error {
		started.Add(1)
		<-release
		return nil
	}}
	s.dropped = sync.NewCond(&s.mu)
	for i := range maxUndropped {
		s.dropLater(fmt.Sprintf("db%d", i)) // returns at once
	}

	returned := make(chan struct{})
	go func() {
		s.dropLater("one too many")
		close(returned)
	}()
	select {
	case <-returned:
		t.Fatal("a cleanup went on with the backlog full")
	case <-time.After(100 * time.Millisecond):
	}
	require.Eventually(t, func() bool { return started.Load() == maxUndropped+1 }, 5*time.Second, time.Millisecond,
		"every drop is issued at once, not queued")

	release <- struct{}{} // one drop finishes
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("the cleanup still waits with room in the backlog")
	}
	close(release)
}
