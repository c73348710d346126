package jobs_test

import (
	"context"
	"embed"
	"io/fs"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/jobs"
)

// The tests play a service named "orders" with one table, orders, in its own schema, and
// jobs in orders_river.
const service = "orders"

//go:embed testdata/migrations
var testdataMigrations embed.FS

func ordersMigrations(t *testing.T) fs.FS {
	t.Helper()
	sub, err := fs.Sub(testdataMigrations, "testdata/migrations")
	require.NoError(t, err)
	return sub
}

// testBundle is a private database holding the orders service's schema and its River
// schema, and the service's pool, whose search_path is its own schema.
type testBundle struct {
	pool *pgxpool.Pool
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	pool := dbtest.NewPool(t, service, ordersMigrations(t))
	_, err := jobs.Migrate(t.Context(), pool, service, nil)
	require.NoError(t, err)
	return &testBundle{pool: pool}
}

// openPool opens another pool on the database of b, as another replica would.
func (b *testBundle) openPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := database.Open(t.Context(), b.pool.Config().ConnString(), database.WithSchema(service))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// startClient builds and starts a client of the orders service, stopped when the test
// ends.
func startClient(t *testing.T, pool *pgxpool.Pool, cfg jobs.Config) *jobs.Client {
	t.Helper()
	client := newClient(t, pool, cfg)
	require.NoError(t, client.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, client.Stop(ctx))
	})
	return client
}

func newClient(t *testing.T, pool *pgxpool.Pool, cfg jobs.Config) *jobs.Client {
	t.Helper()
	if cfg.Service == "" {
		cfg.Service = service
	}
	client, err := jobs.New(pool, cfg)
	require.NoError(t, err)
	return client
}

// shipArgs is the job the orders service inserts when an order is placed.
type shipArgs struct {
	OrderID int64 `json:"order_id"`
}

func (shipArgs) Kind() string { return "order_ship" }

// workFunc registers f as the worker of shipArgs.
func workFunc(f func(context.Context, *river.Job[shipArgs]) error) *river.Workers {
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(f))
	return workers
}

// counter counts the attempts of shipArgs jobs.
func counter(n *atomic.Int64) *river.Workers {
	return workFunc(func(context.Context, *river.Job[shipArgs]) error {
		n.Add(1)
		return nil
	})
}

// waitForState waits until the job reaches state and returns it.
func waitForState(t *testing.T, client *jobs.Client, id int64, state rivertype.JobState) *rivertype.JobRow {
	t.Helper()
	var job *rivertype.JobRow
	require.Eventually(t, func() bool {
		got, err := client.River().JobGet(t.Context(), id)
		if err != nil {
			return false
		}
		job = got
		return job.State == state
	}, 15*time.Second, 20*time.Millisecond, "job %d never became %s", id, state)
	return job
}
