package jobs_test

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/backplane/backplane/internal/jobs"
)

// sendReceiptArgs is a job of the orders service: email the receipt of an order.
type sendReceiptArgs struct {
	OrderID int64 `json:"order_id"`
}

func (sendReceiptArgs) Kind() string { return "orders_send_receipt" }

// sendReceiptWorker works sendReceiptArgs jobs through send, which reports how long a
// provider asked to wait when it refused.
type sendReceiptWorker struct {
	river.WorkerDefaults[sendReceiptArgs]
	send func(ctx context.Context, orderID int64) (retryAfter time.Duration, err error)
}

func (w *sendReceiptWorker) Work(ctx context.Context, job *river.Job[sendReceiptArgs]) error {
	retryAfter, err := w.send(ctx, job.Args.OrderID)
	if err != nil && retryAfter > 0 {
		// A rate limit: the retry comes no sooner than the provider said.
		return jobs.RetryAfter(err, retryAfter)
	}
	return err
}

// pruneArgs is the orders service's nightly upkeep.
type pruneArgs struct{}

func (pruneArgs) Kind() string { return "orders_prune" }

// How a service uses its jobs: the assembler migrates the River schema beside the
// service's own, the service builds its client in New, inserts jobs in the transaction
// of the change that causes them, and stops the client on shutdown.
func Example() {
	ctx := context.Background()
	var (
		pool   *pgxpool.Pool // the service's own pool, search_path "orders"
		logger = slog.Default()
	)

	// backplane migrate, and each service start, beside database.Migrate:
	if _, err := jobs.Migrate(ctx, pool, "orders", logger); err != nil {
		logger.Error("orders jobs", "error", err)
		return
	}

	workers := river.NewWorkers()
	river.AddWorker(workers, &sendReceiptWorker{send: func(context.Context, int64) (time.Duration, error) { return 0, nil }})
	river.AddWorker(workers, river.WorkFunc(func(context.Context, *river.Job[pruneArgs]) error { return nil }))
	client, err := jobs.New(pool, jobs.Config{
		Service: "orders",
		Workers: workers,
		PeriodicJobs: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(24*time.Hour),
			func() (river.JobArgs, *river.InsertOpts) { return pruneArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true})},
		Logger: logger,
	})
	if err != nil {
		logger.Error("orders jobs", "error", err)
		return
	}
	if err := client.Start(ctx); err != nil {
		logger.Error("orders jobs", "error", err)
		return
	}

	// In a handler: the order and its receipt job commit together, or neither does.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO orders (id, item) VALUES (1, 'kettle')"); err != nil {
			return err
		}
		_, err := client.InsertTx(ctx, tx, sendReceiptArgs{OrderID: 1},
			&river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}})
		return err
	})
	if err != nil {
		logger.Error("orders jobs", "error", err)
		return
	}

	// The admin port, internal-only:
	ui, err := jobs.NewUI("/jobs", logger, client)
	if err != nil {
		logger.Error("orders jobs", "error", err)
		return
	}
	admin := http.NewServeMux()
	admin.Handle("/jobs/", ui)
	admin.Handle("/jobs", ui)

	// On shutdown, within the process's budget:
	stopCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_ = client.Stop(stopCtx)
}
