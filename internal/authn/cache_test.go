package authn

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestVerifierCacheReusesAndExpires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := time.Now()
	clock := func() time.Time { return now }
	v, err := NewVerifier(VerifierConfig{
		Issuer: testIssuer, Audience: testAudience, Keys: b.jwks, Sessions: b.sessions,
		CacheFor: 500 * time.Millisecond, Now: clock,
	})
	require.NoError(t, err)
	token, sid := b.login(t)
	ctx := context.Background()

	p, err := v.Verify(ctx, token)
	require.NoError(t, err)
	require.Equal(t, sid, p.SessionID)

	// The session ends: within the cache window the token still passes, once the window
	// has passed it does not.
	require.NoError(t, b.sessions.End(ctx, sid, time.Now().Add(time.Hour)))
	_, err = v.Verify(ctx, token)
	require.NoError(t, err, "served from the cache")
	now = now.Add(501 * time.Millisecond)
	_, err = v.Verify(ctx, token)
	require.ErrorIs(t, err, ErrInvalidToken, "refused once the window passed")

	// A token that fails verification is never cached.
	_, err = v.Verify(ctx, token+"x")
	require.ErrorIs(t, err, ErrInvalidToken)
}

func TestVerifierWithoutCacheChecksEveryCall(t *testing.T) {
	t.Parallel()
	b := setup(t)
	token, sid := b.login(t)
	ctx := context.Background()
	_, err := b.verifier.Verify(ctx, token)
	require.NoError(t, err)
	require.NoError(t, b.sessions.End(ctx, sid, time.Now().Add(time.Hour)))
	_, err = b.verifier.Verify(ctx, token)
	require.ErrorIs(t, err, ErrInvalidToken)
}
