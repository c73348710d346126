package identity_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/identity"
)

func TestPrincipalRoundTrip(t *testing.T) {
	t.Parallel()
	_, ok := identity.FromContext(context.Background())
	require.False(t, ok)
	ctx := identity.WithPrincipal(context.Background(), identity.Principal{UserID: "u1", Roles: []string{"admin"}})
	p, ok := identity.FromContext(ctx)
	require.True(t, ok)
	require.Equal(t, "u1", p.UserID)
	require.True(t, p.HasRole("admin"))
	require.False(t, p.HasRole("root"))
	_, ok = identity.FromContext(identity.WithPrincipal(context.Background(), identity.Principal{}))
	require.False(t, ok, "a principal without a user is no principal")
}
