package usage

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/identity"
)

// A summary its caller gave up on, while PostgreSQL made it wait, answers
// DEADLINE_EXCEEDED, not the UNAVAILABLE of a database that is down, and is logged
// below error: the caller's deadline is not a failure of ours.
func TestASummaryPastItsDeadlineIsNotAnOutage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	user := uuid.New()
	// The plan is read (and cached) first, so that the wait is the store's.
	_, err := b.srv.GetUsageSummary(b.direct(user), &usagev1.GetUsageSummaryRequest{})
	require.NoError(t, err)
	dbtest.LockTables(t, b.pool, "totals")
	dbtest.RequireCutByDeadline(t, b.direct(user), func(ctx context.Context) error {
		_, err := b.srv.GetUsageSummary(ctx, &usagev1.GetUsageSummaryRequest{})
		return err
	})
}

// direct is a context in which user is the caller, as the interceptors leave it.
func (b *bundle) direct(user uuid.UUID) context.Context {
	return identity.WithPrincipal(context.Background(), identity.Principal{UserID: user.String(), Roles: []string{authn.RoleUser}})
}
