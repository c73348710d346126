package notification

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/services/notification/dbsqlc"
)

// store is the service's PostgreSQL storage. Every method translates driver errors with
// database.TranslateError, so callers test for database.ErrNotFound and ErrConflict and
// never see pgx.
type store struct {
	pool *pgxpool.Pool
	q    *dbsqlc.Queries
}

func newStore(pool *pgxpool.Pool) *store {
	return &store{pool: pool, q: dbsqlc.New(pool)}
}

// outboxEntry is a notification's initial state on one channel.
type outboxEntry struct {
	channel string
	status  string
	reason  string
}

// createNotification stores a notification and its outbox rows in one transaction, so a
// notification is never accepted without the work that delivers it. When the idempotency
// key was seen it stores nothing and returns the first notification with deduplicated set.
func (s *store) createNotification(ctx context.Context, n dbsqlc.NotificationInsertParams, entries []outboxEntry) (row dbsqlc.Notification, deduplicated bool, err error) {
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
			if err := q.OutboxInsert(ctx, dbsqlc.OutboxInsertParams{
				NotificationID: row.ID, Channel: e.channel, Status: e.status, StatusReason: e.reason,
			}); err != nil {
				return err
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

// deliveries returns the outbox rows of the given notifications, keyed by notification.
func (s *store) deliveries(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID][]dbsqlc.Outbox, error) {
	rows, err := s.q.OutboxListForNotifications(ctx, ids)
	if err != nil {
		return nil, database.TranslateError(err)
	}
	out := make(map[uuid.UUID][]dbsqlc.Outbox, len(ids))
	for _, r := range rows {
		out[r.NotificationID] = append(out[r.NotificationID], r)
	}
	return out, nil
}

func (s *store) claim(ctx context.Context, p dbsqlc.OutboxClaimParams) ([]dbsqlc.OutboxClaimRow, error) {
	rows, err := s.q.OutboxClaim(ctx, p)
	return rows, database.TranslateError(err)
}

// errLeaseLost means the worker's lease ran out and another worker took the email over;
// the outcome this worker holds must be dropped.
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

func (s *store) markSent(ctx context.Context, p dbsqlc.OutboxMarkSentParams) error {
	return leaseHeld(s.q.OutboxMarkSent(ctx, p))
}

func (s *store) retry(ctx context.Context, p dbsqlc.OutboxRetryParams) error {
	return leaseHeld(s.q.OutboxRetry(ctx, p))
}

func (s *store) finish(ctx context.Context, p dbsqlc.OutboxFinishParams) error {
	return leaseHeld(s.q.OutboxFinish(ctx, p))
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
