package authn

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/redistest"
)

const (
	testIssuer   = "https://backplane.test"
	testAudience = "backplane"
)

// testBundle is what most tests need: a key set, an issuer and a verifier over a live
// session mirror in the real Redis.
type testBundle struct {
	keys     *KeySet
	issuer   *Issuer
	sessions *LiveSessions
	verifier *Verifier
	jwks     *countingJWKS
	now      time.Time
}

func newSigningKey(t testing.TB) SigningKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return SigningKey{ID: KeyID(pub), Private: priv}
}

// countingJWKS serves a key set and counts fetches.
type countingJWKS struct {
	keys    func() []*authv1.Jwk
	fetches int
}

func (c *countingJWKS) FetchJWKS(context.Context) ([]*authv1.Jwk, error) {
	c.fetches++
	return c.keys(), nil
}

func setup(t testing.TB) *testBundle {
	t.Helper()
	b := &testBundle{now: time.Now()}
	var err error
	b.keys, err = NewKeySet(newSigningKey(t))
	require.NoError(t, err)
	b.issuer, err = NewIssuer(IssuerConfig{Issuer: testIssuer, Audience: testAudience, TTL: 15 * time.Minute}, b.keys)
	require.NoError(t, err)
	b.sessions = newTestSessions(t)
	ready, err := b.sessions.Rebuild(context.Background(), noSessions)
	require.NoError(t, err)
	require.True(t, ready)
	b.jwks = &countingJWKS{keys: func() []*authv1.Jwk { return b.issuer.Keys().JWKS() }}
	b.verifier, err = NewVerifier(VerifierConfig{
		Issuer: testIssuer, Audience: testAudience, Keys: b.jwks, Sessions: b.sessions,
	})
	require.NoError(t, err)
	return b
}

// login issues a token for a fresh live session.
func (b *testBundle) login(t testing.TB, roles ...string) (token, sessionID string) {
	t.Helper()
	sessionID = rand.Text()
	require.NoError(t, b.sessions.MarkLive(context.Background(), sessionID, time.Now().Add(time.Hour)))
	token, _, err := b.issuer.Issue("user-"+rand.Text(), sessionID, roles)
	require.NoError(t, err)
	return token, sessionID
}

func noSessions(context.Context, string) ([]LiveSession, error) { return nil, nil }

// newTestSessions returns a mirror under a prefix of its own, deleted when the test ends.
func newTestSessions(t testing.TB, opts ...LiveSessionsOption) *LiveSessions {
	t.Helper()
	rdb := redistest.Client(t)
	prefix := "authn-test:" + rand.Text() + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			_ = rdb.Del(ctx, iter.Val()).Err()
		}
	})
	return NewLiveSessions(rdb, append([]LiveSessionsOption{WithKeyPrefix(prefix)}, opts...)...)
}
