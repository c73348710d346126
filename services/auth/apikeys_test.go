package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/scenario"
)

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	acct := b.verify(t, b.signUp(t, uniqueEmail()))
	me := b.as(t, acct.tokens.GetAccessToken())
	svc := identity.WithService(ctx, "gateway")
	var secret string
	var key *authv1.ApiKey

	scenario.Step(t, "create", func(t *testing.T) {
		created, err := b.srv.CreateApiKey(me, &authv1.CreateApiKeyRequest{DisplayName: "ci", Scopes: []string{"profile:read"}})
		require.NoError(t, err)
		secret = created.GetSecret()
		require.True(t, strings.HasPrefix(secret, "bpk_"))
		require.Len(t, secret, 4+43)
		key = created.GetApiKey()
		require.Equal(t, secret[:12], key.GetPrefix())
		require.Equal(t, []string{"profile:read"}, key.GetScopes())
		require.Nil(t, key.GetExpireTime())
	})
	scenario.Step(t, "introspection, for services only", func(t *testing.T) {
		_, err := b.srv.IntrospectApiKey(me, &authv1.IntrospectApiKeyRequest{Secret: secret})
		require.Equal(t, fault.PermissionDenied, fault.KindOf(err), "for services only")
		intro, err := b.srv.IntrospectApiKey(svc, &authv1.IntrospectApiKeyRequest{Secret: secret})
		require.NoError(t, err)
		require.Equal(t, key.GetId(), intro.GetApiKeyId())
		require.Equal(t, acct.user.GetId(), intro.GetUserId())
		require.Equal(t, []authv1.Role{authv1.Role_ROLE_USER}, intro.GetRoles())
	})
	scenario.Step(t, "the list shows its use, never its secret", func(t *testing.T) {
		list, err := b.srv.ListApiKeys(me, &authv1.ListApiKeysRequest{})
		require.NoError(t, err)
		require.Len(t, list.GetApiKeys(), 1)
		require.NotNil(t, list.GetApiKeys()[0].GetLastUseTime(), "introspection records use")
		require.NotContains(t, list.String(), secret[12:])
	})
	scenario.Step(t, "only the hash is stored", func(t *testing.T) {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM api_keys WHERE secret_hash = $1", digest(secret)).Scan(&n))
		require.Equal(t, 1, n)
	})
	scenario.Step(t, "an API key cannot mint API keys", func(t *testing.T) {
		keyCtx := identity.WithPrincipal(ctx, identity.Principal{UserID: acct.user.GetId(), APIKeyID: key.GetId()})
		_, err := b.srv.CreateApiKey(keyCtx, &authv1.CreateApiKeyRequest{DisplayName: "x", Scopes: []string{"profile:read"}})
		require.Equal(t, fault.PermissionDenied, fault.KindOf(err))
	})
	// Someone else cannot delete it; its owner can, and then it is dead.
	scenario.Step(t, "delete", func(t *testing.T) {
		stranger := b.signUp(t, uniqueEmail())
		_, err := b.srv.DeleteApiKey(b.as(t, stranger.tokens.GetAccessToken()), &authv1.DeleteApiKeyRequest{ApiKeyId: key.GetId()})
		require.Equal(t, fault.NotFound, fault.KindOf(err))
		_, err = b.srv.DeleteApiKey(me, &authv1.DeleteApiKeyRequest{ApiKeyId: key.GetId()})
		require.NoError(t, err)
		_, err = b.srv.IntrospectApiKey(svc, &authv1.IntrospectApiKeyRequest{Secret: secret})
		require.Equal(t, fault.Unauthenticated, fault.KindOf(err))
		_, err = b.srv.APIKeys().Introspect(ctx, secret)
		require.ErrorIs(t, err, authn.ErrInvalidToken)
	})
}

func TestAPIKeyExpiry(t *testing.T) {
	t.Parallel()
	now := time.Now()
	b := setup(t, withNow(func() time.Time { return now }))
	acct := b.verify(t, b.signUp(t, uniqueEmail()))
	me := b.as(t, acct.tokens.GetAccessToken())

	created, err := b.srv.CreateApiKey(me, &authv1.CreateApiKeyRequest{
		DisplayName: "short", Scopes: []string{"profile:read"}, ExpireTime: timestamppb.New(now.Add(time.Hour)),
	})
	require.NoError(t, err)
	_, err = b.srv.APIKeys().Introspect(context.Background(), created.GetSecret())
	require.NoError(t, err)
	now = now.Add(time.Hour)
	_, err = b.srv.APIKeys().Introspect(context.Background(), created.GetSecret())
	require.ErrorIs(t, err, authn.ErrInvalidToken)
}
