package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// DefaultMaxWorkers is how many jobs a client works at once when its Config names no
// queues: it then works River's default queue alone.
const DefaultMaxWorkers = 10

// hardStopGrace is how long Stop waits for jobs to return once it has cancelled them.
const hardStopGrace = time.Second

// Config is what a service tells New about its jobs. Service and Workers are required;
// every zero value else means the default written beside it.
type Config struct {
	// Service is the service's name; its jobs live in the schema Schema(Service), which
	// Migrate must have brought up to date.
	Service string
	// Workers holds a worker for every kind of job the service inserts.
	Workers *river.Workers
	// Queues are the queues this client works, with how many jobs of each at once.
	// Default: River's default queue with DefaultMaxWorkers.
	Queues map[string]river.QueueConfig
	// PeriodicJobs are inserted on their schedules by the elected leader of the
	// service's replicas, so each runs once per period however many replicas run.
	PeriodicJobs []*river.PeriodicJob
	// Retry is the wait before each retry of a failed job. Default: DefaultBackoff().
	Retry Backoff
	// MaxAttempts is how many times a job is tried before it is discarded, unless the job
	// says otherwise when inserted. Default: River's, 25.
	MaxAttempts int
	// JobTimeout cancels the context of a job running longer, unless the worker's
	// Timeout says otherwise. Default: River's, one minute.
	JobTimeout time.Duration
	// RescueAfter is how long a job may stay running before it is taken for lost (its
	// process died) and retried; it must exceed JobTimeout. Default: River's, an hour
	// beyond JobTimeout.
	RescueAfter time.Duration
	// PollInterval is how often the client looks for jobs that became due without a
	// notification: a retry or a scheduled job. New jobs are announced through
	// LISTEN/NOTIFY and start at once. Default: River's, one second. Below River's
	// fetch cooldown (100 ms), the cooldown shrinks with it.
	PollInterval time.Duration
	// FetchCooldown is the least time between two fetches of a queue: a worker that
	// finishes while jobs wait takes the next one no sooner. Each fetch takes as many
	// jobs as there are free workers, so a queue of many short jobs and few workers
	// runs at most workers/cooldown jobs a second: lower it for such a queue. Default:
	// River's, 100 ms, or the PollInterval when shorter.
	FetchCooldown time.Duration
	// DepthInterval is how often a started client reads how many jobs wait in its queues,
	// for the backplane.jobs.* gauges (depth.go). Default: DefaultDepthInterval.
	DepthInterval time.Duration
	// Logger receives River's logs; nil discards them.
	Logger *slog.Logger
	// TracerProvider and MeterProvider receive the spans and metrics of every insert
	// and every job worked; nil ones record nothing.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

func (c *Config) validate() error {
	if c.Workers == nil {
		return errors.New("a Workers bundle is required: a client works the jobs its service inserts")
	}
	if c.Retry != (Backoff{}) {
		if err := c.Retry.validate(); err != nil {
			return err
		}
	}
	if c.MaxAttempts < 0 || c.JobTimeout < 0 || c.RescueAfter < 0 || c.PollInterval < 0 || c.FetchCooldown < 0 || c.DepthInterval < 0 {
		return errors.New("none of MaxAttempts, JobTimeout, RescueAfter, PollInterval, FetchCooldown and DepthInterval may be negative")
	}
	return nil
}

// Client inserts and works the jobs of one service, in the service's own River schema.
type Client struct {
	river   *river.Client[pgx.Tx]
	pool    *pgxpool.Pool
	service string
	schema  string
	log     *slog.Logger

	// queues are the names of the queues the client works, sorted.
	queues        []string
	depth         *depthGauges
	depthInterval time.Duration
	// stopDepth ends the depth reads Start began; depthDone closes when they have.
	stopDepth context.CancelFunc
	depthDone chan struct{}
}

// New builds the job client of cfg.Service on pool, the service's own pool. It does not
// start working: Start does.
func New(pool *pgxpool.Pool, cfg Config) (*Client, error) {
	schema, err := schemaOf(cfg.Service)
	if err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("jobs: %s: %w", cfg.Service, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("jobs_schema", schema)
	tp, mp := cfg.TracerProvider, cfg.MeterProvider
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	backoff := cfg.Retry
	if backoff == (Backoff{}) {
		backoff = DefaultBackoff()
	}
	queues := cfg.Queues
	if len(queues) == 0 {
		queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: DefaultMaxWorkers}}
	}
	policy := newRetryPolicy(backoff, log)

	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Schema:               schema,
		Workers:              cfg.Workers,
		Queues:               queues,
		PeriodicJobs:         cfg.PeriodicJobs,
		RetryPolicy:          policy,
		ErrorHandler:         policy,
		MaxAttempts:          cfg.MaxAttempts,
		JobTimeout:           cfg.JobTimeout,
		RescueStuckJobsAfter: cfg.RescueAfter,
		FetchPollInterval:    cfg.PollInterval,
		// River refuses a poll interval shorter than the cooldown: a shorter interval
		// asked for means fetching that often.
		FetchCooldown: min(cmp.Or(cfg.FetchCooldown, river.FetchCooldownDefault), cmp.Or(cfg.PollInterval, river.FetchCooldownDefault)),
		Logger:        log,
		// A span and metrics for each insert and attempt, each attempt in the trace of
		// the request that inserted the job (tracing.go).
		Plugins: tracePlugins(tp, mp),
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: %s: %w", schema, err)
	}
	depth, err := newDepthGauges(mp)
	if err != nil {
		return nil, fmt.Errorf("jobs: %s: depth gauges: %w", schema, err)
	}
	return &Client{
		river: rc, pool: pool, service: cfg.Service, schema: schema, log: log,
		queues: slices.Sorted(maps.Keys(queues)), depth: depth, depthInterval: cmp.Or(cfg.DepthInterval, DefaultDepthInterval),
	}, nil
}

// Service is the name of the service whose jobs this client holds.
func (c *Client) Service() string { return c.service }

// Schema is the PostgreSQL schema of the client's River tables.
func (c *Client) Schema() string { return c.schema }

// River is the underlying River client, for what this package does not wrap: listing,
// cancelling or retrying jobs, pausing queues, subscribing to events in tests.
func (c *Client) River() *river.Client[pgx.Tx] { return c.river }

// Start checks that the client's schema is migrated and starts working jobs and, when
// elected leader, River's upkeep: periodic jobs, scheduled jobs and retries coming due,
// rescue of lost jobs, removal of old ones. ctx bounds the start alone; the client
// works until Stop.
func (c *Client) Start(ctx context.Context) error {
	migrator, err := rivermigrate.New(c.river.Driver(), &rivermigrate.Config{Schema: c.schema, Logger: c.log})
	if err != nil {
		return fmt.Errorf("jobs: start %s: %w", c.schema, err)
	}
	res, err := migrator.Validate(ctx, nil)
	if err != nil {
		return fmt.Errorf("jobs: start %s: %w", c.schema, err)
	}
	if !res.OK {
		return fmt.Errorf("jobs: start %s: the schema is not migrated (run backplane migrate): %v", c.schema, res.Messages)
	}
	// Detached, because River stops working jobs when the context given to its Start
	// ends, and a start-up deadline must not end the client.
	if err := c.river.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("jobs: start %s: %w", c.schema, err)
	}
	// Only a client that works jobs reports its queues' depth: a process that merely
	// inserts has no workers whose backlog the gauges would describe.
	if err := c.depth.start(); err != nil {
		return fmt.Errorf("jobs: start %s: depth gauges: %w", c.schema, err)
	}
	depthCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	c.stopDepth, c.depthDone = stop, make(chan struct{})
	go func() {
		defer close(c.depthDone)
		c.watchDepth(depthCtx, c.depthInterval)
	}()
	return nil
}

// Stop stops fetching jobs and lets those running finish until ctx is done. Then it
// cancels their contexts and waits a further second for them to return: River puts a
// job whose worker returns its context's error back in the queue without spending an
// attempt, so it runs again later, here or on another replica. A job that ignores
// cancellation stays marked running until RescueAfter, then is retried. Stop returns an
// error only when jobs outlived even the cancellation.
func (c *Client) Stop(ctx context.Context) error {
	if c.stopDepth != nil {
		c.stopDepth()
		<-c.depthDone
		c.depth.stop()
		c.stopDepth = nil
	}
	if err := c.river.Stop(ctx); err == nil || ctx.Err() == nil {
		return err
	}
	c.log.WarnContext(ctx, "jobs still running when the stop budget ran out: cancelling them; they will run again")
	hardCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), hardStopGrace)
	defer cancel()
	if err := c.river.StopAndCancel(hardCtx); err != nil {
		return fmt.Errorf("jobs: stop %s: jobs still running %s after their cancellation: %w", c.schema, hardStopGrace, err)
	}
	return nil
}

// Insert inserts a job in a transaction of its own. Work that must happen because of a
// change in the database is inserted with InsertTx instead, in the change's transaction.
func (c *Client) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	res, err := c.river.Insert(ctx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("jobs: insert %s: %w", args.Kind(), err)
	}
	return res, nil
}

// InsertTx inserts a job in tx, so that it exists exactly when the change made in tx is
// committed. tx may belong to any pool of the client's database, such as the service's
// own whose search_path is the service's schema: River names its schema in every query.
// The job is announced on commit and starts at once in whichever replica fetches it.
func (c *Client) InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	res, err := c.river.InsertTx(ctx, tx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("jobs: insert %s: %w", args.Kind(), err)
	}
	return res, nil
}

// InsertManyTx inserts several jobs in tx, in one statement.
func (c *Client) InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	res, err := c.river.InsertManyTx(ctx, tx, params)
	if err != nil {
		return nil, fmt.Errorf("jobs: insert %d jobs: %w", len(params), err)
	}
	return res, nil
}
