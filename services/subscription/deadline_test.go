package subscription

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/fault"
)

// A read its caller gave up on, while PostgreSQL made it wait, answers
// DEADLINE_EXCEEDED, logged below error: the caller's deadline is not a bug of ours.
func TestAReadPastItsDeadlineIsNotInternal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dbtest.LockTables(t, b.pool, "subscriptions")
	ctx, cancel := context.WithTimeout(as(uuid.New()), 300*time.Millisecond)
	defer cancel()
	_, err := b.srv.GetSubscription(ctx, &subscriptionv1.GetSubscriptionRequest{})
	require.Error(t, err)
	require.Equal(t, codes.DeadlineExceeded, fault.Status(err).Code(), "%v", err)
	require.Less(t, fault.KindOf(err).LogLevel(), slog.LevelError)
}
