package auth

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/fault"
)

// A sign-up its caller gave up on, while PostgreSQL made it wait, answers
// DEADLINE_EXCEEDED, logged below error: the caller's deadline is not a bug of ours.
func TestASignUpPastItsDeadlineIsNotInternal(t *testing.T) {
	t.Parallel()
	b := setupIdle(t)
	dbtest.LockTables(t, b.pool, "users")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := b.srv.SignUp(ctx, &authv1.SignUpRequest{Email: "late@example.com", Password: "correct horse battery staple", DisplayName: "Late"})
	require.Error(t, err)
	require.Equal(t, codes.DeadlineExceeded, fault.Status(err).Code(), "%v", err)
	require.Less(t, fault.KindOf(err).LogLevel(), slog.LevelError)
}
