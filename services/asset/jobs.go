package asset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/riverqueue/river"
	"gocloud.dev/blob"

	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/service"
)

// The service's background work, on River (internal/jobs), in the schema asset_river.
// Both jobs are periodic, inserted by the elected leader of the service's replicas
// alone, so each runs once per period however many replicas run; both are safe to run
// twice at once (rows are taken with SKIP LOCKED, erasing is idempotent):
//
//   - asset_erase, every minute: erases the bytes of deleted assets, then forgets them;
//   - asset_sweep, hourly and at start: deletes assets left PENDING for a day, giving
//     their reservations back, and erases orphaned objects: keys under objects/ that no
//     asset names, older than an hour (an upload attempt whose abort never reached the
//     bucket, or a replica that died between storing an object and recording it).

// eraseArgs is the periodic erasing of deleted assets' bytes.
type eraseArgs struct{}

// Kind implements river.JobArgs.
func (eraseArgs) Kind() string { return "asset_erase" }

// sweepArgs is the periodic sweep of abandoned uploads and orphaned objects.
type sweepArgs struct{}

// Kind implements river.JobArgs.
func (sweepArgs) Kind() string { return "asset_sweep" }

// The schedules, ages and sizes of the background work.
const (
	eraseEvery   = time.Minute
	sweepEvery   = time.Hour
	pendingTTL   = 24 * time.Hour
	orphanAge    = time.Hour
	jobBatch     = 100
	sweepTimeout = 30 * time.Minute
)

type eraseWorker struct {
	river.WorkerDefaults[eraseArgs]
	s *Server
}

// Work implements river.Worker.
func (w *eraseWorker) Work(ctx context.Context, _ *river.Job[eraseArgs]) error {
	_, err := w.s.erase(ctx)
	return err
}

type sweepWorker struct {
	river.WorkerDefaults[sweepArgs]
	s *Server
}

// Work implements river.Worker.
func (w *sweepWorker) Work(ctx context.Context, _ *river.Job[sweepArgs]) error {
	_, _, err := w.s.sweep(ctx)
	return err
}

// Timeout implements river.Worker: listing a large bucket takes a while.
func (w *sweepWorker) Timeout(*river.Job[sweepArgs]) time.Duration { return sweepTimeout }

// erase erases the bytes of deleted assets, every attempt's, and then forgets the
// assets. It returns how many it forgot.
func (s *Server) erase(ctx context.Context) (int, error) {
	erased := 0
	for {
		rows, err := s.store.listDeleted(ctx, jobBatch)
		if err != nil {
			return erased, fmt.Errorf("list deleted assets: %w", err)
		}
		for _, a := range rows {
			if err := s.eraseUnder(ctx, objectPrefix+a.ID.String()+"/", time.Time{}, nil); err != nil {
				return erased, err
			}
			if err := s.store.purge(ctx, a.ID); err != nil {
				return erased, fmt.Errorf("forget asset %s: %w", a.ID, err)
			}
			erased++
		}
		if len(rows) < jobBatch {
			if erased > 0 {
				s.log.InfoContext(ctx, "deleted assets erased", "count", erased)
			}
			return erased, nil
		}
	}
}

// sweep deletes assets PENDING for longer than pendingTTL and erases orphaned objects.
// It returns how many of each.
func (s *Server) sweep(ctx context.Context) (expired, orphans int, err error) {
	now := s.now()
	for {
		n := 0
		err := s.store.inTx(ctx, func(tx *store) error {
			rows, err := tx.expirePending(ctx, now.Add(-pendingTTL), now, jobBatch)
			if err != nil {
				return err
			}
			n = len(rows)
			for _, a := range rows {
				if _, err := tx.addLevel(ctx, a.OwnerUserID, -a.ReservedBytes, now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return expired, 0, fmt.Errorf("expire pending assets: %w", err)
		}
		expired += n
		if n < jobBatch {
			break
		}
	}
	orphans = 0
	err = s.eraseUnder(ctx, objectPrefix, now.Add(-orphanAge), &orphans)
	if expired > 0 || orphans > 0 {
		s.log.InfoContext(ctx, "asset sweep", "pending_expired", expired, "orphans_erased", orphans)
	}
	return expired, orphans, err
}

// eraseUnder deletes objects under prefix. With a zero olderThan it deletes them all;
// otherwise only those last modified before it that no asset names, counting them in
// *count.
func (s *Server) eraseUnder(ctx context.Context, prefix string, olderThan time.Time, count *int) error {
	it := s.bucket.List(&blob.ListOptions{Prefix: prefix})
	var batch []*blob.ListObject
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		doomed := batch
		if !olderThan.IsZero() {
			keys := make([]string, len(batch))
			for i, o := range batch {
				keys[i] = o.Key
			}
			known, err := s.store.knownKeys(ctx, keys)
			if err != nil {
				return fmt.Errorf("look up object keys: %w", err)
			}
			named := map[string]bool{}
			for _, k := range known {
				named[k] = true
			}
			doomed = nil
			for _, o := range batch {
				if !named[o.Key] && o.ModTime.Before(olderThan) {
					doomed = append(doomed, o)
				}
			}
		}
		for _, o := range doomed {
			if err := s.bucket.Delete(ctx, o.Key); err != nil && !isBlobNotFound(err) {
				return fmt.Errorf("erase %s: %s", o.Key, bucketErrorText(err))
			}
			if count != nil {
				*count++
			}
		}
		batch = batch[:0]
		return nil
	}
	for {
		o, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return flush()
		}
		if err != nil {
			return fmt.Errorf("list %s: %s", prefix, bucketErrorText(err))
		}
		if o.IsDir {
			continue
		}
		batch = append(batch, o)
		if len(batch) == jobBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// jobsConfig is the service's River client: its workers and periodic jobs.
func (s *Server) jobsConfig(deps service.Deps, poll time.Duration) jobs.Config {
	workers := river.NewWorkers()
	river.AddWorker(workers, &eraseWorker{s: s})
	river.AddWorker(workers, &sweepWorker{s: s})
	return jobs.Config{
		Service: "asset",
		Workers: workers,
		PeriodicJobs: []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(eraseEvery),
				func() (river.JobArgs, *river.InsertOpts) { return eraseArgs{}, nil },
				&river.PeriodicJobOpts{ID: eraseArgs{}.Kind()}),
			river.NewPeriodicJob(river.PeriodicInterval(sweepEvery),
				func() (river.JobArgs, *river.InsertOpts) { return sweepArgs{}, nil },
				&river.PeriodicJobOpts{ID: sweepArgs{}.Kind(), RunOnStart: true}),
		},
		PollInterval:   poll,
		Logger:         deps.Logger,
		TracerProvider: deps.TracerProvider,
		MeterProvider:  deps.MeterProvider,
	}
}
