package notification

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/services/notification/dbsqlc"
)

// store is the service's PostgreSQL storage. Every method translates driver errors with
// database.TranslateError, so callers test for database.ErrNotFound and ErrConflict and
// never see pgx.
type store struct {
	pool *pgxpool.Pool
	q    *dbsqlc.Queries
	// jobs inserts River jobs in the store's transactions.
	jobs *jobs.Client
}

func newStore(pool *pgxpool.Pool, jobs *jobs.Client) *store {
	return &store{pool: pool, q: dbsqlc.New(pool), jobs: jobs}
}

// deliveryEntry is a notification's initial state on one channel.
type deliveryEntry struct {
	channel string
	status  string
	reason  string
}

// createNotification stores a notification, its delivery rows and, for an email to
// send, the River job that sends it, in one transaction: a notification is never
// accepted without the work that delivers it, and that work never exists without it.
// When the idempotency key was seen it stores nothing and returns the first notification
// with deduplicated set.
func (s *store) createNotification(ctx context.Context, n dbsqlc.NotificationInsertParams, entries []deliveryEntry) (row dbsqlc.Notification, deduplicated bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		row, err = q.NotificationInsert(ctx, n)
		if errors.Is(err, pgx.ErrNoRows) {
			deduplicated = true
			row, err = q.NotificationGetByIdempotencyKey(ctx, n.IdempotencyKey)
			return err
		}
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := q.DeliveryInsert(ctx, dbsqlc.DeliveryInsertParams{
				NotificationID: row.ID, Channel: e.channel, Status: e.status, StatusReason: e.reason,
			}); err != nil {
				return err
			}
			if e.channel == channelEmail && e.status == statusPending {
				if _, err := s.jobs.InsertTx(ctx, tx, emailArgs{NotificationID: row.ID}, nil); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return row, deduplicated, database.TranslateError(err)
}

func (s *store) preferences(ctx context.Context, userID uuid.UUID) ([]dbsqlc.Preference, error) {
	rows, err := s.q.PreferenceListForUser(ctx, userID)
	return rows, database.TranslateError(err)
}

// setPreferences writes entries in one transaction: a request changes all of them or none.
func (s *store) setPreferences(ctx context.Context, entries []dbsqlc.PreferenceUpsertParams) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		for _, e := range entries {
			if err := q.PreferenceUpsert(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	return database.TranslateError(err)
}

func (s *store) inboxNotification(ctx context.Context, userID, id uuid.UUID) (dbsqlc.Notification, error) {
	row, err := s.q.NotificationGetInInbox(ctx, dbsqlc.NotificationGetInInboxParams{ID: id, UserID: &userID})
	return row, database.TranslateError(err)
}

func (s *store) listInbox(ctx context.Context, p dbsqlc.NotificationListInboxParams) ([]dbsqlc.Notification, error) {
	rows, err := s.q.NotificationListInbox(ctx, p)
	return rows, database.TranslateError(err)
}

func (s *store) unreadCount(ctx context.Context, userID uuid.UUID) (int32, error) {
	n, err := s.q.NotificationCountUnread(ctx, &userID)
	return n, database.TranslateError(err)
}

func (s *store) markRead(ctx context.Context, userID, id uuid.UUID) (dbsqlc.Notification, error) {
	row, err := s.q.NotificationMarkRead(ctx, dbsqlc.NotificationMarkReadParams{ID: id, UserID: &userID})
	return row, database.TranslateError(err)
}

func (s *store) markAllRead(ctx context.Context, p dbsqlc.NotificationMarkAllReadParams) (int64, error) {
	n, err := s.q.NotificationMarkAllRead(ctx, p)
	return n, database.TranslateError(err)
}

// deliveries returns the delivery rows of the given notifications, keyed by notification.
func (s *store) deliveries(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID][]dbsqlc.Delivery, error) {
	rows, err := s.q.DeliveryListForNotifications(ctx, ids)
	if err != nil {
		return nil, database.TranslateError(err)
	}
	out := make(map[uuid.UUID][]dbsqlc.Delivery, len(ids))
	for _, r := range rows {
		out[r.NotificationID] = append(out[r.NotificationID], r)
	}
	return out, nil
}

// beginEmailAttempt records that attempt number attempt at a notification's email
// starts, and returns what sending it needs; database.ErrNotFound when the email is no
// longer pending, or a later attempt began.
func (s *store) beginEmailAttempt(ctx context.Context, notificationID uuid.UUID, attempt int) (dbsqlc.DeliveryBeginEmailAttemptRow, error) {
	row, err := s.q.DeliveryBeginEmailAttempt(ctx, dbsqlc.DeliveryBeginEmailAttemptParams{
		NotificationID: notificationID, Attempt: int64(attempt),
	})
	return row, database.TranslateError(err)
}

// errLeaseLost means an attempt outlived its lease and River started another in its
// place, which now holds the email: the outcome the late attempt holds must be dropped.
var errLeaseLost = errors.New("lease lost")

func leaseHeld(n int64, err error) error {
	if err != nil {
		return database.TranslateError(err)
	}
	if n == 0 {
		return errLeaseLost
	}
	return nil
}

func (s *store) markSent(ctx context.Context, p dbsqlc.DeliveryMarkEmailSentParams) error {
	return leaseHeld(s.q.DeliveryMarkEmailSent(ctx, p))
}

func (s *store) recordEmailFailure(ctx context.Context, p dbsqlc.DeliveryRecordEmailFailureParams) error {
	return leaseHeld(s.q.DeliveryRecordEmailFailure(ctx, p))
}

func (s *store) finishEmail(ctx context.Context, p dbsqlc.DeliveryFinishEmailParams) error {
	return leaseHeld(s.q.DeliveryFinishEmail(ctx, p))
}

func (s *store) suppressed(ctx context.Context, email, category string) (bool, error) {
	ok, err := s.q.SuppressionExists(ctx, dbsqlc.SuppressionExistsParams{Email: email, Category: category})
	return ok, database.TranslateError(err)
}

func (s *store) suppress(ctx context.Context, email, category, reason string) error {
	return database.TranslateError(s.q.SuppressionInsert(ctx, dbsqlc.SuppressionInsertParams{
		Email: email, Category: category, Reason: reason,
	}))
}

// applySendgridEvents records a webhook batch in one transaction. Each event runs apply
// only the first time its sg_event_id is seen, so SendGrid's retries change nothing.
func (s *store) applySendgridEvents(ctx context.Context, events []sendgridEvent, apply func(*dbsqlc.Queries, sendgridEvent) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		for _, e := range events {
			n, err := q.SendgridEventInsert(ctx, dbsqlc.SendgridEventInsertParams{SgEventID: e.ID, Event: e.Event})
			if err != nil {
				return err
			}
			if n == 0 {
				continue
			}
			if err := apply(q, e); err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
		}
		return nil
	})
	return database.TranslateError(err)
}

// forgetSendgridEventsBefore drops remembered webhook event ids received before t.
func (s *store) forgetSendgridEventsBefore(ctx context.Context, t time.Time) (int64, error) {
	n, err := s.q.SendgridEventDeleteBefore(ctx, t)
	return n, database.TranslateError(err)
}

// upgradeBatch is how many jobs the upgrade inserts per statement.
const upgradeBatch = 1000

// upgradeOutbox carries the outbox table of releases before River forward, in one
// transaction: every outbox row becomes a delivery row, every email still unsent a River
// job due when its next attempt was, and the table is dropped. It returns how many jobs
// it inserted, or -1 when there was no outbox table left (a fresh database, or an
// upgrade already done).
func (s *store) upgradeOutbox(ctx context.Context) (int, error) {
	moved := -1
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		exists, err := q.OutboxExists(ctx)
		if err != nil || !exists {
			return err
		}
		if err := q.OutboxLock(ctx); err != nil {
			return err
		}
		if _, err := q.DeliveryCopyFromOutbox(ctx); err != nil {
			return err
		}
		unsent, err := q.OutboxListUnsent(ctx)
		if err != nil {
			return err
		}
		for batch := range slices.Chunk(unsent, upgradeBatch) {
			params := make([]river.InsertManyParams, len(batch))
			for i, u := range batch {
				params[i] = river.InsertManyParams{
					Args: emailArgs{NotificationID: u.NotificationID, PriorAttempts: int(u.Attempts)},
					// The inserter cannot know BACKPLANE_NOTIFY_MAX_ATTEMPTS, which the
					// workers read: River's default is the job's ceiling, and the
					// worker stops at the configured attempts below it.
					InsertOpts: &river.InsertOpts{ScheduledAt: u.DueAt, MaxAttempts: river.MaxAttemptsDefault},
				}
			}
			if _, err := s.jobs.InsertManyTx(ctx, tx, params); err != nil {
				return err
			}
		}
		moved = len(unsent)
		return q.OutboxDrop(ctx)
	})
	return moved, database.TranslateError(err)
}
