package auth

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/scenario"
)

func adminContext(userID string) context.Context {
	return identity.WithPrincipal(context.Background(), identity.Principal{UserID: userID, Roles: []string{authn.RoleUser, authn.RoleAdmin}})
}

func TestListUsersPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ids []string
	for range 5 {
		ids = append(ids, b.signUp(t, uniqueEmail()).user.GetId())
	}
	ctx := adminContext(ids[0])

	scenario.Step(t, "every account once, in creation order", func(t *testing.T) {
		var got []string
		token := ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 5)
			resp, err := b.srv.ListUsers(ctx, &authv1.ListUsersRequest{PageSize: 2, PageToken: token})
			require.NoError(t, err)
			require.LessOrEqual(t, len(resp.GetUsers()), 2)
			for _, u := range resp.GetUsers() {
				got = append(got, u.GetId())
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		require.Equal(t, ids, got, "every account once, in creation order")
	})
	scenario.Step(t, "a bad page token", func(t *testing.T) {
		_, err := b.srv.ListUsers(ctx, &authv1.ListUsersRequest{PageToken: "!!"})
		require.Equal(t, fault.InvalidArgument, fault.KindOf(err))
	})
	// The handler checks the role itself too, in case the interceptor was left out.
	scenario.Step(t, "a user without the role", func(t *testing.T) {
		user := identity.WithPrincipal(context.Background(), identity.Principal{UserID: ids[1], Roles: []string{authn.RoleUser}})
		_, err := b.srv.ListUsers(user, &authv1.ListUsersRequest{})
		require.Equal(t, fault.PermissionDenied, fault.KindOf(err))
	})
}

func TestDisableUserEndsEverythingAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bg := context.Background()
	admin := b.signUp(t, uniqueEmail())
	victim := b.verify(t, b.signUp(t, uniqueEmail()))
	key, err := b.srv.CreateApiKey(b.as(t, victim.tokens.GetAccessToken()), &authv1.CreateApiKeyRequest{DisplayName: "k", Scopes: []string{"profile:read"}})
	require.NoError(t, err)
	ctx := adminContext(admin.user.GetId())

	scenario.Step(t, "an admin cannot disable themself", func(t *testing.T) {
		_, err := b.srv.DisableUser(ctx, &authv1.DisableUserRequest{UserId: admin.user.GetId()})
		require.Equal(t, fault.FailedPrecondition, fault.KindOf(err))
	})
	scenario.Step(t, "disable ends sessions, refresh tokens, API keys and logins", func(t *testing.T) {
		resp, err := b.srv.DisableUser(ctx, &authv1.DisableUserRequest{UserId: victim.user.GetId()})
		require.NoError(t, err)
		require.True(t, resp.GetUser().GetDisabled())
		require.False(t, b.live(victim.tokens.GetAccessToken()))
		_, err = refresh(b, victim.tokens.GetRefreshToken())
		require.Equal(t, fault.Unauthenticated, fault.KindOf(err))
		_, err = b.srv.APIKeys().Introspect(bg, key.GetSecret())
		require.ErrorIs(t, err, authn.ErrInvalidToken)
		_, err = b.srv.Login(bg, &authv1.LoginRequest{Email: victim.email, Password: victim.password})
		require.Equal(t, fault.PermissionDenied, fault.KindOf(err))
	})
	scenario.Step(t, "enable: old sessions stay ended, login works", func(t *testing.T) {
		_, err := b.srv.EnableUser(ctx, &authv1.EnableUserRequest{UserId: victim.user.GetId()})
		require.NoError(t, err)
		require.False(t, b.live(victim.tokens.GetAccessToken()), "old sessions stay ended")
		_, err = b.srv.Login(bg, &authv1.LoginRequest{Email: victim.email, Password: victim.password})
		require.NoError(t, err)
	})
	scenario.Step(t, "an unknown user", func(t *testing.T) {
		_, err := b.srv.DisableUser(ctx, &authv1.DisableUserRequest{UserId: "0190a0a0-0000-7000-8000-000000000000"})
		require.Equal(t, fault.NotFound, fault.KindOf(err))
	})
}

func TestLookupUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acct := b.signUp(t, uniqueEmail())
	ctx := identity.WithService(context.Background(), "billing")

	byID, err := b.srv.LookupUser(ctx, &authv1.LookupUserRequest{Key: &authv1.LookupUserRequest_UserId{UserId: acct.user.GetId()}})
	require.NoError(t, err)
	require.Equal(t, acct.email, byID.GetUser().GetEmail())
	byEmail, err := b.srv.LookupUser(ctx, &authv1.LookupUserRequest{Key: &authv1.LookupUserRequest_Email{Email: acct.email}})
	require.NoError(t, err)
	require.Equal(t, acct.user.GetId(), byEmail.GetUser().GetId())
	_, err = b.srv.LookupUser(ctx, &authv1.LookupUserRequest{Key: &authv1.LookupUserRequest_Email{Email: uniqueEmail()}})
	require.Equal(t, fault.NotFound, fault.KindOf(err))
	_, err = b.srv.LookupUser(b.as(t, acct.tokens.GetAccessToken()), &authv1.LookupUserRequest{Key: &authv1.LookupUserRequest_UserId{UserId: acct.user.GetId()}})
	require.Equal(t, fault.PermissionDenied, fault.KindOf(err), "a user's token never opens it")
}
