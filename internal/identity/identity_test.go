package identity_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/fault"
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

func TestUserIDAndSession(t *testing.T) {
	t.Parallel()
	user, session := uuid.New(), uuid.New()

	_, err := identity.UserID(context.Background())
	require.Equal(t, fault.Unauthenticated, fault.KindOf(err), "a USER call without a user fails closed")
	_, _, err = identity.Session(context.Background())
	require.Equal(t, fault.Unauthenticated, fault.KindOf(err))
	_, err = identity.UserID(identity.WithPrincipal(context.Background(), identity.Principal{UserID: "not-a-uuid"}))
	require.Equal(t, fault.Unauthenticated, fault.KindOf(err))

	withToken := identity.WithPrincipal(context.Background(), identity.Principal{UserID: user.String(), SessionID: session.String()})
	id, err := identity.UserID(withToken)
	require.NoError(t, err)
	require.Equal(t, user, id)
	gotUser, gotSession, err := identity.Session(withToken)
	require.NoError(t, err)
	require.Equal(t, user, gotUser)
	require.Equal(t, session, gotSession)

	withKey := identity.WithPrincipal(context.Background(), identity.Principal{UserID: user.String(), APIKeyID: "k1"})
	id, err = identity.UserID(withKey)
	require.NoError(t, err)
	require.Equal(t, user, id, "an API key acts for its user")
	_, _, err = identity.Session(withKey)
	require.Equal(t, fault.PermissionDenied, fault.KindOf(err), "an API key has no session")
}

func TestCallingService(t *testing.T) {
	t.Parallel()
	_, ok := identity.ServiceFromContext(context.Background())
	require.False(t, ok)
	_, err := identity.CallingService(context.Background())
	require.Equal(t, fault.PermissionDenied, fault.KindOf(err))
	_, err = identity.CallingService(identity.WithService(context.Background(), ""))
	require.Equal(t, fault.PermissionDenied, fault.KindOf(err), "a nameless service is no service")

	ctx := identity.WithService(context.Background(), "gateway")
	name, err := identity.CallingService(ctx)
	require.NoError(t, err)
	require.Equal(t, "gateway", name)
}
