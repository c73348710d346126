package notification

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/service"
)

// The service's background work, on River (internal/jobs): the arguments of each kind of
// job, its worker, and the client that inserts and works them, configured from the
// service's settings.

// emailArgs is the job that delivers a notification's email. Send inserts it in the
// transaction that stores the notification, so the notification exists exactly when its
// email is on its way.
type emailArgs struct {
	NotificationID uuid.UUID `json:"notification_id" river:"unique"`
	// PriorAttempts counts the attempts made before the job existed, by the outbox
	// workers of a release before River (upgrade.go); they count towards
	// BACKPLANE_NOTIFY_MAX_ATTEMPTS like the job's own.
	PriorAttempts int `json:"prior_attempts,omitempty"`
}

// Kind implements river.JobArgs.
func (emailArgs) Kind() string { return "notification_email" }

// InsertOpts implements river.JobArgsWithInsertOpts: one job per notification, however
// often it is inserted (a unique job, keyed by the notification id alone). The
// idempotency key already stops a repeated Send from inserting again; this holds for
// every other way in too, such as the upgrade.
func (emailArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// emailWorker works emailArgs jobs.
type emailWorker struct {
	river.WorkerDefaults[emailArgs]
	deliverer *deliverer
}

// Work implements river.Worker.
func (w *emailWorker) Work(ctx context.Context, job *river.Job[emailArgs]) error {
	return w.deliverer.deliver(ctx, job)
}

// forgetEventsArgs is the periodic job that drops old SendGrid event ids.
type forgetEventsArgs struct{}

// Kind implements river.JobArgs.
func (forgetEventsArgs) Kind() string { return "notification_forget_webhook_events" }

// Webhook event ids are kept long enough to recognise every retry SendGrid may make
// (it gives up after 72 hours), and then dropped so the table does not grow forever.
const (
	eventRetention = 7 * 24 * time.Hour
	eventSweep     = time.Hour
)

// forgetEventsWorker works forgetEventsArgs jobs.
type forgetEventsWorker struct {
	river.WorkerDefaults[forgetEventsArgs]
	store *store
}

// Work implements river.Worker.
func (w *forgetEventsWorker) Work(ctx context.Context, _ *river.Job[forgetEventsArgs]) error {
	_, err := w.store.forgetSendgridEventsBefore(ctx, time.Now().Add(-eventRetention))
	return err
}

// newWorkers registers a worker for every kind of job the service inserts.
func newWorkers(d *deliverer, st *store) *river.Workers {
	workers := river.NewWorkers()
	river.AddWorker(workers, &emailWorker{deliverer: d})
	river.AddWorker(workers, &forgetEventsWorker{store: st})
	return workers
}

// jobsConfig maps the service's settings onto River's:
//
//   - BACKPLANE_NOTIFY_WORKERS is the default queue's number of concurrent jobs;
//   - BACKPLANE_NOTIFY_LEASE is both the job timeout and the time after which River
//     takes a job still running for lost (its process died) and runs it again: an
//     attempt gives its send half the lease and records the outcome within the rest
//     (deliverer.deliver), so it is over before anyone may take the email over;
//   - BACKPLANE_NOTIFY_POLL_INTERVAL is how often idle workers look for jobs that
//     became due (a retry); new jobs are announced through LISTEN/NOTIFY, and busy
//     workers fetch the next job as soon as one is free;
//   - BACKPLANE_NOTIFY_RETRY_BASE and _RETRY_MAX shape the retry backoff, ±25 %;
//   - BACKPLANE_NOTIFY_MAX_ATTEMPTS is the attempts of every job inserted.
//
// Old webhook event ids are dropped every eventSweep, by the elected leader of the
// service's replicas alone.
func jobsConfig(cfg Config, workers int, w *river.Workers, deps service.Deps) jobs.Config {
	c := jobs.Config{
		Service: serviceName,
		Workers: w,
		PeriodicJobs: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(eventSweep),
			func() (river.JobArgs, *river.InsertOpts) { return forgetEventsArgs{}, nil },
			&river.PeriodicJobOpts{ID: forgetEventsArgs{}.Kind(), RunOnStart: true})},
		Retry:        cfg.backoff(),
		MaxAttempts:  cfg.MaxAttempts,
		JobTimeout:   cfg.Lease,
		RescueAfter:  cfg.Lease,
		PollInterval: cfg.PollInterval,
		// A worker takes the next waiting email as soon as it is free, as the outbox's
		// did: each delivery is one short job, and River's 100 ms between fetches would
		// hold a few workers to a few dozen emails a second.
		FetchCooldown:  time.Millisecond,
		Logger:         deps.Logger,
		TracerProvider: deps.TracerProvider,
		MeterProvider:  deps.MeterProvider,
	}
	if workers > 0 {
		c.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}}
	}
	return c
}

// newInserter builds a client that only inserts the service's jobs, on db: it is never
// started, so its workers never run; River uses them only to check the kinds inserted.
func newInserter(db *pgxpool.Pool, deps service.Deps) (*jobs.Client, error) {
	return jobs.New(db, jobsConfig(defaultConfig(), 0, newWorkers(&deliverer{}, &store{}), deps))
}
