package auth

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/authn"
)

// TestEdgeSurvivesRedisLoss checks the edge's view (a verifier in another process, with
// Redis but without PostgreSQL) across a loss of Redis's contents.
func TestEdgeSurvivesRedisLoss(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	edge, err := authn.NewVerifier(authn.VerifierConfig{
		Issuer: b.deps.Issuer, Audience: b.cfg.Audience,
		Keys:     authn.IssuerJWKS{Issuer: b.srv.issuer},
		Sessions: authn.NewLiveSessions(b.rdb, authn.WithKeyPrefix(b.prefix+"session:")),
	})
	require.NoError(t, err)
	alive := b.signUp(t, uniqueEmail())
	ended := b.signUp(t, uniqueEmail())
	_, err = b.srv.Logout(b.as(t, ended.tokens.GetAccessToken()), &authv1.LogoutRequest{})
	require.NoError(t, err)
	require.NoError(t, b.srv.ensureMirror(ctx))

	verify := func(token string) error { _, err := edge.Verify(ctx, token); return err }
	require.NoError(t, verify(alive.tokens.GetAccessToken()))
	require.ErrorIs(t, verify(ended.tokens.GetAccessToken()), authn.ErrInvalidToken)

	// Redis loses everything this test wrote.
	keys, err := b.rdb.Keys(ctx, b.prefix+"session:*").Result()
	require.NoError(t, err)
	require.NoError(t, b.rdb.Del(ctx, keys...).Err())

	// Until the rebuild the edge cannot tell, and says so instead of logging anyone out.
	require.ErrorIs(t, verify(alive.tokens.GetAccessToken()), authn.ErrMirrorRebuilding)
	require.NotErrorIs(t, verify(alive.tokens.GetAccessToken()), authn.ErrInvalidToken)

	require.NoError(t, b.srv.ensureMirror(ctx))
	require.NoError(t, verify(alive.tokens.GetAccessToken()), "the live session is back")
	require.ErrorIs(t, verify(ended.tokens.GetAccessToken()), authn.ErrInvalidToken, "the ended one is not")
}
