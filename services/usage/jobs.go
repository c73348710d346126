package usage

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/service"
)

// The service's background work, on River (internal/jobs), in the schema usage_river.
// Periodic jobs are inserted by the elected leader of the service's replicas alone, so
// each runs once per period however many replicas run:
//
//   - usage_upkeep, hourly and at start: creates the events partitions of the months
//     ahead, drops those past the retention, deletes expired idempotency keys and the
//     totals, alerts and Stripe reports of periods past the retention;
//   - usage_alert_sweep, every minute: queues alerts whose job was never inserted;
//   - usage_stripe_report_scan, every BACKPLANE_USAGE_REPORT_INTERVAL when billing is
//     configured: queues a report of each metered total that grew (billing.go).
//
// And jobs inserted as work arises: usage_alert (alerts.go), usage_stripe_report
// (billing.go), each unique by its arguments.

// upkeepArgs is the periodic upkeep of the service's tables.
type upkeepArgs struct{}

// Kind implements river.JobArgs.
func (upkeepArgs) Kind() string { return "usage_upkeep" }

// The upkeep's schedule and sizes.
const (
	upkeepEvery = time.Hour
	// monthsAhead are the months ahead whose partitions exist at all times: a few, so
	// that a leader that stops electing for weeks costs nothing.
	monthsAhead = 3
	// keyBatch is how many expired keys one statement deletes.
	keyBatch = 10000
	// upkeepTimeout bounds one run, which deletes a day's expired keys at most.
	upkeepTimeout = 15 * time.Minute
)

// upkeepWorker works upkeepArgs jobs.
type upkeepWorker struct {
	river.WorkerDefaults[upkeepArgs]
	s *Server
}

// Work implements river.Worker.
func (w *upkeepWorker) Work(ctx context.Context, _ *river.Job[upkeepArgs]) error {
	return w.s.upkeep(ctx)
}

// Timeout implements river.Worker: deleting a busy day's keys takes a while.
func (w *upkeepWorker) Timeout(*river.Job[upkeepArgs]) time.Duration { return upkeepTimeout }

// upkeep creates the partitions of the months ahead and forgets what is past keeping.
func (s *Server) upkeep(ctx context.Context) error {
	now := s.now().UTC()
	// From last month: an event may occur up to 35 days before it is recorded.
	created, err := s.store.createPartitions(ctx, now.AddDate(0, -1, 0), now.AddDate(0, monthsAhead, 0))
	if err != nil {
		return fmt.Errorf("create partitions: %w", err)
	}
	cutoff := s.retentionCutoff(now)
	dropped, err := s.store.dropPartitions(ctx, cutoff)
	if err != nil {
		return fmt.Errorf("drop partitions: %w", err)
	}
	if err := s.store.forgetBefore(ctx, cutoff); err != nil {
		return fmt.Errorf("forget old periods: %w", err)
	}
	var expired int64
	for {
		n, err := s.store.deleteExpiredKeys(ctx, now.Add(-s.cfg.KeyTTL), keyBatch)
		if err != nil {
			return fmt.Errorf("delete expired keys: %w", err)
		}
		expired += n
		if n < keyBatch {
			break
		}
	}
	s.log.InfoContext(ctx, "usage upkeep", "partitions_created", created, "partitions_dropped", dropped, "keys_expired", expired)
	return nil
}

// retentionCutoff is the time before which everything is forgotten: Retention months
// before now.
func (s *Server) retentionCutoff(now time.Time) time.Time {
	return now.AddDate(0, -s.cfg.Retention, 0)
}

// jobsConfig is the service's River client: its workers, and its periodic jobs.
func (s *Server) jobsConfig(deps service.Deps, w wiring) jobs.Config {
	workers := river.NewWorkers()
	river.AddWorker(workers, &upkeepWorker{s: s})
	river.AddWorker(workers, &alertWorker{s: s})
	river.AddWorker(workers, &alertSweepWorker{s: s})
	river.AddWorker(workers, &reportScanWorker{s: s})
	river.AddWorker(workers, &reportWorker{s: s})
	periodic := []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(upkeepEvery),
			func() (river.JobArgs, *river.InsertOpts) { return upkeepArgs{}, nil },
			&river.PeriodicJobOpts{ID: upkeepArgs{}.Kind(), RunOnStart: true}),
		river.NewPeriodicJob(river.PeriodicInterval(alertSweepEvery),
			func() (river.JobArgs, *river.InsertOpts) { return alertSweepArgs{}, nil },
			&river.PeriodicJobOpts{ID: alertSweepArgs{}.Kind()}),
	}
	if s.reporter != nil {
		periodic = append(periodic, river.NewPeriodicJob(river.PeriodicInterval(s.cfg.ReportInterval),
			func() (river.JobArgs, *river.InsertOpts) { return reportScanArgs{}, nil },
			&river.PeriodicJobOpts{ID: reportScanArgs{}.Kind(), RunOnStart: true}))
	}
	return jobs.Config{
		Service:        "usage",
		Workers:        workers,
		PeriodicJobs:   periodic,
		PollInterval:   w.jobPoll,
		Logger:         deps.Logger,
		TracerProvider: deps.TracerProvider,
		MeterProvider:  deps.MeterProvider,
	}
}
