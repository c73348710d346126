package subscription

import (
	"context"
	"testing"

	"github.com/google/uuid"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/dbtest"
)

// A read its caller gave up on, while PostgreSQL made it wait, answers
// DEADLINE_EXCEEDED, logged below error: the caller's deadline is not a bug of ours.
func TestAReadPastItsDeadlineIsNotInternal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dbtest.LockTables(t, b.pool, "subscriptions")
	dbtest.RequireCutByDeadline(t, as(uuid.New()), func(ctx context.Context) error {
		_, err := b.srv.GetSubscription(ctx, &subscriptionv1.GetSubscriptionRequest{})
		return err
	})
}
