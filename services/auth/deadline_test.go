package auth

import (
	"context"
	"testing"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/dbtest"
)

// A sign-up its caller gave up on, while PostgreSQL made it wait, answers
// DEADLINE_EXCEEDED, logged below error: the caller's deadline is not a bug of ours.
func TestASignUpPastItsDeadlineIsNotInternal(t *testing.T) {
	t.Parallel()
	b := setupIdle(t)
	dbtest.LockTables(t, b.pool, "users")
	dbtest.RequireCutByDeadline(t, context.Background(), func(ctx context.Context) error {
		_, err := b.srv.SignUp(ctx, &authv1.SignUpRequest{Email: "late@example.com", Password: "correct horse battery staple", DisplayName: "Late"})
		return err
	})
}
