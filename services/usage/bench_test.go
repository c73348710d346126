package usage

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
)

// rate runs call n times from concurrency goroutines and returns the calls per second.
// Any error fails the benchmark: a fast error is not a result.
func rate(b *testing.B, n, concurrency int, call func(i int) error) float64 {
	b.Helper()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, concurrency)
	)
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := call(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return float64(n) / elapsed.Seconds()
}

// BenchmarkRecordUsageBatch: events/s through RecordUsageBatch, 1,000 events a call,
// over gRPC with the production chain (token and session checked, validation), each
// call claiming its keys, inserting its events and adding them to their totals in one
// statement; against loops of single-row INSERTs of the same events into the same
// table of the same PostgreSQL, which count nothing and claim no key:
//   - autocommit: each INSERT its own transaction, as a row-at-a-time ingest is;
//   - one transaction: the 1,000 INSERTs of a batch in one, so only round trips differ.
//
// Aim: ≥ 20× the autocommit loop.
func BenchmarkRecordUsageBatch(b *testing.B) {
	bd := setup(b)
	ctx := context.Background()
	const batch, batches = 1000, 4
	user := uuid.New()
	userCtx := bd.as(b, user)
	occur := time.Now().UTC()
	var seq atomic.Int64

	batchCall := func(int) error {
		s := seq.Add(1)
		events := make([]*usagev1.RecordUsageRequest, batch)
		for i := range events {
			events[i] = &usagev1.RecordUsageRequest{Meter: "api_calls", Quantity: 1, IdempotencyKey: fmt.Sprintf("b%d-%d", s, i)}
		}
		resp, err := bd.api.user.RecordUsageBatch(userCtx, &usagev1.RecordUsageBatchRequest{Events: events})
		if err != nil {
			return err
		}
		if o := resp.GetResults()[batch-1].GetOutcome(); o != usagev1.RecordOutcome_RECORD_OUTCOME_RECORDED {
			return fmt.Errorf("outcome %v", o)
		}
		return nil
	}
	const insert = `INSERT INTO events (id, user_id, meter, quantity, idempotency_key, occur_time, period_start, properties, create_time)
		VALUES ($1, $2, 'api_calls', 1, $3, $4, $4, '{}', now())`
	baseUser := uuid.New()
	autocommit := func(int) error {
		s := seq.Add(1)
		for i := range batch {
			if _, err := bd.pool.Exec(ctx, insert, uuid.New(), baseUser, fmt.Sprintf("a%d-%d", s, i), occur); err != nil {
				return err
			}
		}
		return nil
	}
	oneTx := func(int) error {
		s := seq.Add(1)
		return pgx.BeginFunc(ctx, bd.pool, func(tx pgx.Tx) error {
			for i := range batch {
				if _, err := tx.Exec(ctx, insert, uuid.New(), baseUser, fmt.Sprintf("t%d-%d", s, i), occur); err != nil {
					return err
				}
			}
			return nil
		})
	}
	var sub, auto, tx []float64
	for range b.N {
		for range 3 { // alternated, so that the shared machine's noise falls on each
			sub = append(sub, batch*rate(b, batches, 1, batchCall))
			auto = append(auto, batch*rate(b, batches, 1, autocommit))
			tx = append(tx, batch*rate(b, batches, 1, oneTx))
		}
	}
	s, a, t := medianOf(sub), medianOf(auto), medianOf(tx)
	b.ReportMetric(s, "events/s")
	b.ReportMetric(a, "baseline-autocommit-events/s")
	b.ReportMetric(t, "baseline-one-tx-events/s")
	b.ReportMetric(s/a, "ratio-autocommit")
	b.ReportMetric(s/t, "ratio-one-tx")
}

// BenchmarkConsumeQuota: ConsumeQuota decisions/s over gRPC with the production chain,
// 8 callers, on a meter the plan does not limit (so that every decision counts and
// writes its event), each decision one statement that decides, counts, and claims its key;
// against the floor of a decision in PostgreSQL: one UPDATE of a counter row a call, by
// the same 8 callers on the same pool.
//   - users: every call for another user (no two callers wait on one row);
//   - one-user: every call on one user's total, the row every decision locks.
func BenchmarkConsumeQuota(b *testing.B) {
	bd := setup(b)
	ctx := context.Background()
	const n, callers = 2000, 8
	_, err := bd.pool.Exec(ctx, "CREATE TABLE bench_counters (id int PRIMARY KEY, n bigint NOT NULL)")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bd.pool.Exec(ctx, "INSERT INTO bench_counters SELECT g, 0 FROM generate_series(0, $1) AS g", n); err != nil {
		b.Fatal(err)
	}
	users := make([]uuid.UUID, n)
	for i := range users {
		users[i] = uuid.New()
	}
	one := uuid.New()
	var seq atomic.Int64
	consumeFor := func(user func(i int) uuid.UUID) func(int) error {
		return func(i int) error {
			_, err := bd.api.internal.ConsumeQuota(ctx, &usagev1.ConsumeQuotaRequest{
				UserId: user(i).String(), Meter: "seats", Quantity: 1, IdempotencyKey: fmt.Sprint("q", seq.Add(1)),
			})
			return err
		}
	}
	update := func(row func(i int) int) func(int) error {
		return func(i int) error {
			_, err := bd.pool.Exec(ctx, "UPDATE bench_counters SET n = n + 1 WHERE id = $1", row(i))
			return err
		}
	}
	// A first call per user fills the entitlement cache, as a running service has.
	rate(b, n, callers, consumeFor(func(i int) uuid.UUID { return users[i] }))
	rate(b, 1, 1, consumeFor(func(int) uuid.UUID { return one }))

	for _, tc := range []struct {
		name string
		user func(int) uuid.UUID
		row  func(int) int
	}{
		{"users", func(i int) uuid.UUID { return users[i] }, func(i int) int { return i }},
		{"one-user", func(int) uuid.UUID { return one }, func(int) int { return 0 }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var sub, base []float64
			for range b.N {
				for range 3 {
					sub = append(sub, rate(b, n, callers, consumeFor(tc.user)))
					base = append(base, rate(b, n, callers, update(tc.row)))
				}
			}
			s, f := medianOf(sub), medianOf(base)
			b.ReportMetric(s, "decisions/s")
			b.ReportMetric(f, "baseline-updates/s")
			b.ReportMetric(s/f, "ratio")
		})
	}
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
