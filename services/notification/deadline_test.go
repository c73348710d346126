package notification

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
)

// An inbox read its caller gave up on, while PostgreSQL made it wait, answers
// DEADLINE_EXCEEDED, logged below error: the caller's deadline is not a bug of ours.
func TestAnInboxReadPastItsDeadlineIsNotInternal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dbtest.LockTables(t, b.pool, "notification")
	user := identity.WithPrincipal(context.Background(), identity.Principal{UserID: uuid.NewString(), Roles: []string{authn.RoleUser}})
	ctx, cancel := context.WithTimeout(user, 300*time.Millisecond)
	defer cancel()
	_, err := b.server.ListNotifications(ctx, &notificationv1.ListNotificationsRequest{})
	require.Error(t, err)
	require.Equal(t, codes.DeadlineExceeded, fault.Status(err).Code(), "%v", err)
	require.Less(t, fault.KindOf(err).LogLevel(), slog.LevelError)
}
