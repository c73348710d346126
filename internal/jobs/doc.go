// Package jobs is Backplane's one job system: background work runs as River jobs
// (github.com/riverqueue/river) in PostgreSQL, inserted in the same transaction as the
// change that causes them, retried with backoff, deduplicated when inserted as unique,
// and, for periodic work, inserted by one elected leader however many replicas run.
//
// # One River schema per service
//
// River elects one leader per schema (its river_leader table), and only the leader
// inserts periodic jobs, schedules retries and cleans up. Were several services to share
// one schema with a client each, the leader would be one service's client and only that
// service's periodic jobs would ever run. So every service that has jobs gets a River
// schema of its own, Schema(service) ("notification_river"), beside its own schema, with
// its own leader among that service's replicas. The process assembler calls Migrate for
// it beside the service's migrations; Migrate takes the advisory lock database.Migrate
// takes, so any number of `backplane migrate` or starting replicas may run at once.
//
// # A service's client
//
// New builds a service's Client on the service's own pool. Workers and periodic jobs are
// River's own types (river.AddWorker, river.NewPeriodicJob, river.InsertOpts with
// UniqueOpts); this package adds what every service would otherwise repeat:
//
//   - the schema, derived from the service's name;
//   - a retry schedule (Backoff): by default the first retry about a second after a
//     failure, doubling up to an hour, ±25 %. A worker asks for a longer wait with
//     RetryAfter (a provider's Retry-After), waits without spending an attempt with
//     river.JobSnooze, and gives up with river.JobCancel;
//   - OpenTelemetry through otelriver: a span and metrics for each insert and each
//     attempt. The W3C trace context of the inserting span is stored in the job's
//     metadata (traceparent), and each attempt's span is its child, so one trace runs
//     from the request that caused the job to the job's last query and call, recorded
//     when the request was sampled. Jobs inserted outside any request (periodic ones)
//     are housekeeping and not traced (tracing.go);
//   - Start and Stop fitting a service's start and its shutdown budget;
//   - InsertTx taking a pgx.Tx of the service's own pool: River names its schema in
//     every query, so the pool's search_path (the service's schema) does not matter.
//
// River keeps one connection of the pool for LISTEN, so a service's pool must be sized
// for that connection besides its own queries.
//
// # The UI
//
// UI serves River UI (riverqueue.com/riverui) for every service's schema, one UI per
// schema under <prefix>/<service>/ and an index at <prefix>/, its assets embedded in the
// binary. It lets whoever reaches it cancel, retry and delete jobs, and asks for no
// credentials: it is mounted on the admin port, which is internal-only and must never be
// exposed outside the deployment.
package jobs
