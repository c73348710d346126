package usage

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/services/usage/dbsqlc"
)

// store is the usage service's PostgreSQL storage. It is the one place driver errors
// become database.ErrNotFound and database.ErrConflict; nothing above it sees pgx.
type store struct {
	pool *pgxpool.Pool
	q    *dbsqlc.Queries
}

// newStore returns a store over pool, whose search_path is the usage schema.
func newStore(pool *pgxpool.Pool) *store {
	return &store{pool: pool, q: dbsqlc.New(pool)}
}

// inTx runs fn with a store bound to one transaction, committed when fn returns nil.
func (s *store) inTx(ctx context.Context, fn func(tx *store) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return fn(&store{pool: s.pool, q: s.q.WithTx(tx)})
	})
	return database.TranslateError(err)
}

func one[T any](v T, err error) (T, error) { return v, database.TranslateError(err) }

func none(err error) error { return database.TranslateError(err) }

// Events.

// record records a batch of events, whose arrays p holds, in one statement.
func (s *store) record(ctx context.Context, p dbsqlc.EventsRecordParams) ([]dbsqlc.EventsRecordRow, error) {
	return one(s.q.EventsRecord(ctx, p))
}

func (s *store) event(ctx context.Context, userID uuid.UUID, occurTime time.Time, id uuid.UUID) (dbsqlc.Event, error) {
	return one(s.q.EventGet(ctx, dbsqlc.EventGetParams{UserID: userID, OccurTime: occurTime, ID: id}))
}

func (s *store) listEvents(ctx context.Context, p dbsqlc.EventListForUserParams) ([]dbsqlc.Event, error) {
	return one(s.q.EventListForUser(ctx, p))
}

func (s *store) createPartitions(ctx context.Context, from, to time.Time) (int32, error) {
	return one(s.q.EventPartitionsCreate(ctx, dbsqlc.EventPartitionsCreateParams{FromTime: from, ToTime: to}))
}

func (s *store) dropPartitions(ctx context.Context, cutoff time.Time) (int32, error) {
	return one(s.q.EventPartitionsDrop(ctx, cutoff))
}

func (s *store) partitions(ctx context.Context) ([]string, error) {
	return one(s.q.EventPartitionList(ctx))
}

// Idempotency keys.

func (s *store) key(ctx context.Context, userID uuid.UUID, key string) (dbsqlc.IdempotencyKey, error) {
	return one(s.q.IdempotencyKeyGet(ctx, dbsqlc.IdempotencyKeyGetParams{UserID: userID, IdempotencyKey: key}))
}

func (s *store) keys(ctx context.Context, userID uuid.UUID, keys []string) ([]dbsqlc.IdempotencyKey, error) {
	return one(s.q.IdempotencyKeyListForUser(ctx, dbsqlc.IdempotencyKeyListForUserParams{UserID: userID, IdempotencyKeys: keys}))
}

func (s *store) deleteExpiredKeys(ctx context.Context, cutoff time.Time, limit int32) (int64, error) {
	return one(s.q.IdempotencyKeyDeleteExpired(ctx, dbsqlc.IdempotencyKeyDeleteExpiredParams{Cutoff: cutoff, Max: limit}))
}

// Totals.

// consume decides and counts one ConsumeQuota in one statement. No row means the key
// was claimed before; database.ErrConflict, that it was claimed meanwhile.
func (s *store) consume(ctx context.Context, p dbsqlc.TotalConsumeParams) ([]dbsqlc.TotalConsumeRow, error) {
	return one(s.q.TotalConsume(ctx, p))
}

func (s *store) total(ctx context.Context, userID uuid.UUID, meter string, start time.Time) (dbsqlc.Total, error) {
	return one(s.q.TotalGet(ctx, dbsqlc.TotalGetParams{UserID: userID, Meter: meter, PeriodStart: start}))
}

func (s *store) totals(ctx context.Context, userID uuid.UUID, start time.Time) ([]dbsqlc.Total, error) {
	return one(s.q.TotalListForPeriod(ctx, dbsqlc.TotalListForPeriodParams{UserID: userID, PeriodStart: start}))
}

func (s *store) billedTotals(ctx context.Context, since time.Time) ([]dbsqlc.TotalListBilledRow, error) {
	return one(s.q.TotalListBilled(ctx, since))
}

func (s *store) billedTotal(ctx context.Context, itemID string, start time.Time) (int64, error) {
	return one(s.q.TotalGetBilled(ctx, dbsqlc.TotalGetBilledParams{StripeItemID: &itemID, PeriodStart: start}))
}

// forgetBefore deletes what belongs to periods that ended before cutoff: totals,
// alerts and Stripe reports.
func (s *store) forgetBefore(ctx context.Context, cutoff time.Time) error {
	return s.inTx(ctx, func(tx *store) error {
		if _, err := tx.q.TotalDeleteEndedBefore(ctx, cutoff); err != nil {
			return err
		}
		if _, err := tx.q.AlertDeleteEndedBefore(ctx, cutoff); err != nil {
			return err
		}
		_, err := tx.q.StripeUsageReportDeleteBefore(ctx, cutoff)
		return err
	})
}

// Alerts.

func (s *store) alert(ctx context.Context, k alertKey) (dbsqlc.Alert, error) {
	return one(s.q.AlertGet(ctx, dbsqlc.AlertGetParams{UserID: k.UserID, Meter: k.Meter, PeriodStart: k.PeriodStart, Threshold: k.Threshold}))
}

func (s *store) markAlertSent(ctx context.Context, k alertKey, at time.Time) error {
	return none(s.q.AlertMarkSent(ctx, dbsqlc.AlertMarkSentParams{
		UserID: k.UserID, Meter: k.Meter, PeriodStart: k.PeriodStart, Threshold: k.Threshold, SentTime: &at,
	}))
}

func (s *store) unsentAlerts(ctx context.Context, cutoff time.Time, limit int32) ([]dbsqlc.Alert, error) {
	return one(s.q.AlertListUnsent(ctx, dbsqlc.AlertListUnsentParams{Cutoff: cutoff, Max: limit}))
}

// Stripe usage reports.

// lockReport runs fn with the report of an item's period locked, in one transaction:
// one reporter at a time decides what to send.
func (s *store) lockReport(ctx context.Context, itemID string, start time.Time, fn func(tx *store, r dbsqlc.StripeUsageReport) error) error {
	return s.inTx(ctx, func(tx *store) error {
		key := dbsqlc.StripeUsageReportEnsureParams{StripeItemID: itemID, PeriodStart: start}
		if err := tx.q.StripeUsageReportEnsure(ctx, key); err != nil {
			return err
		}
		r, err := tx.q.StripeUsageReportLock(ctx, dbsqlc.StripeUsageReportLockParams(key))
		if err != nil {
			return err
		}
		return fn(tx, r)
	})
}

func (s *store) setPendingReport(ctx context.Context, p dbsqlc.StripeUsageReportSetPendingParams) error {
	return none(s.q.StripeUsageReportSetPending(ctx, p))
}

func (s *store) confirmReport(ctx context.Context, p dbsqlc.StripeUsageReportConfirmParams) error {
	return none(s.q.StripeUsageReportConfirm(ctx, p))
}

func (s *store) report(ctx context.Context, itemID string, start time.Time) (dbsqlc.StripeUsageReport, error) {
	return one(s.q.StripeUsageReportGet(ctx, dbsqlc.StripeUsageReportGetParams{StripeItemID: itemID, PeriodStart: start}))
}
