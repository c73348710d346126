package notification

import (
	"context"
	"testing"

	"github.com/google/uuid"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/identity"
)

// An inbox read its caller gave up on, while PostgreSQL made it wait, answers
// DEADLINE_EXCEEDED, logged below error: the caller's deadline is not a bug of ours.
func TestAnInboxReadPastItsDeadlineIsNotInternal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dbtest.LockTables(t, b.pool, "notification")
	user := identity.WithPrincipal(context.Background(), identity.Principal{UserID: uuid.NewString(), Roles: []string{authn.RoleUser}})
	dbtest.RequireCutByDeadline(t, user, func(ctx context.Context) error {
		_, err := b.server.ListNotifications(ctx, &notificationv1.ListNotificationsRequest{})
		return err
	})
}
