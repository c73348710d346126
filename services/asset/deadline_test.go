package asset

import (
	"context"
	"testing"

	"github.com/google/uuid"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/identity"
)

// A listing its caller gave up on, while PostgreSQL made it wait, answers
// DEADLINE_EXCEEDED, not the UNAVAILABLE of a database that is down, and is logged
// below error: the caller's deadline is not a failure of ours.
func TestAListingPastItsDeadlineIsNotAnOutage(t *testing.T) {
	t.Parallel()
	b := setup(t, fileBucket(t))
	dbtest.LockTables(t, b.pool, "assets")
	user := identity.WithPrincipal(context.Background(), identity.Principal{UserID: uuid.NewString(), Roles: []string{authn.RoleUser}})
	dbtest.RequireCutByDeadline(t, user, func(ctx context.Context) error {
		_, err := b.srv.ListAssets(ctx, &assetv1.ListAssetsRequest{})
		return err
	})
}
