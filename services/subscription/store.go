package subscription

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/services/subscription/dbsqlc"
)

// store is the subscription service's PostgreSQL storage. It is the one place driver
// errors become database.ErrNotFound and database.ErrConflict; nothing above it sees
// pgx, except the transaction a job is inserted in (tx).
type store struct {
	pool *pgxpool.Pool
	q    *dbsqlc.Queries
	tx   pgx.Tx // the transaction of a store made by inTx; nil otherwise
}

func newStore(pool *pgxpool.Pool) *store {
	return &store{pool: pool, q: dbsqlc.New(pool)}
}

// inTx runs fn with a store bound to one transaction, committed when fn returns nil.
func (s *store) inTx(ctx context.Context, fn func(tx *store) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return fn(&store{pool: s.pool, q: s.q.WithTx(tx), tx: tx})
	})
	return database.TranslateError(err)
}

func one[T any](v T, err error) (T, error) { return v, database.TranslateError(err) }

func none(err error) error { return database.TranslateError(err) }

// Customers.

func (s *store) customer(ctx context.Context, userID uuid.UUID) (dbsqlc.Customer, error) {
	return one(s.q.CustomerGetByUser(ctx, userID))
}

func (s *store) customerByStripeID(ctx context.Context, id string) (dbsqlc.Customer, error) {
	return one(s.q.CustomerGetByStripeID(ctx, id))
}

// addCustomer records a user's Stripe customer unless the user has one already.
func (s *store) addCustomer(ctx context.Context, userID uuid.UUID, stripeID string) error {
	return none(s.q.CustomerInsert(ctx, dbsqlc.CustomerInsertParams{UserID: userID, StripeCustomerID: stripeID}))
}

// lockCustomer serialises the creation of userID's customer between replicas until the
// transaction ends.
func (s *store) lockCustomer(ctx context.Context, userID uuid.UUID) error {
	if err := s.q.CustomerLock(ctx, userID.String()); err != nil {
		return fmt.Errorf("lock customer: %w", database.TranslateError(err))
	}
	return nil
}

// Subscriptions.

// readVersion numbers a read of Stripe about to be made; see the stripe_reads sequence.
func (s *store) readVersion(ctx context.Context) (int64, error) {
	return one(s.q.SubscriptionReadVersion(ctx))
}

// putSubscription writes a subscription read from Stripe and reports whether it did:
// a copy from a later read is left as it is.
func (s *store) putSubscription(ctx context.Context, p dbsqlc.SubscriptionUpsertParams) (dbsqlc.Subscription, bool, error) {
	row, err := s.q.SubscriptionUpsert(ctx, p)
	if errors.Is(err, pgx.ErrNoRows) {
		return dbsqlc.Subscription{}, false, nil
	}
	if err != nil {
		return dbsqlc.Subscription{}, false, database.TranslateError(err)
	}
	return row, true, nil
}

// currentSubscription returns the subscription that speaks for a user: the newest that
// has not ended, else the newest; database.ErrNotFound when the user never subscribed.
func (s *store) currentSubscription(ctx context.Context, userID uuid.UUID) (dbsqlc.Subscription, error) {
	return one(s.q.SubscriptionGetCurrent(ctx, userID))
}

func (s *store) subscriptionByStripeID(ctx context.Context, id string) (dbsqlc.Subscription, error) {
	return one(s.q.SubscriptionGetByStripeID(ctx, id))
}

func (s *store) subscriptionCount(ctx context.Context, userID uuid.UUID) (int64, error) {
	return one(s.q.SubscriptionCountForUser(ctx, userID))
}

func (s *store) listSubscriptions(ctx context.Context, p dbsqlc.SubscriptionListParams) ([]dbsqlc.Subscription, error) {
	return one(s.q.SubscriptionList(ctx, p))
}

// Stripe events.

func (s *store) eventSeen(ctx context.Context, id string) (bool, error) {
	return one(s.q.StripeEventExists(ctx, id))
}

// recordEvent enters an event in the ledger and reports whether it is new. A concurrent
// delivery of the same event waits for the first one's transaction, then finds it.
func (s *store) recordEvent(ctx context.Context, p dbsqlc.StripeEventInsertParams) (bool, error) {
	n, err := s.q.StripeEventInsert(ctx, p)
	return n == 1, database.TranslateError(err)
}

func (s *store) setEventOutcome(ctx context.Context, id, outcome string) error {
	return none(s.q.StripeEventSetOutcome(ctx, dbsqlc.StripeEventSetOutcomeParams{ID: id, Outcome: outcome}))
}

func (s *store) event(ctx context.Context, id string) (dbsqlc.StripeEvent, error) {
	return one(s.q.StripeEventGet(ctx, id))
}
