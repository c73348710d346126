package auth

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/authn"
)

func TestSigningKeysAreSharedSealedAndRotated(t *testing.T) {
	t.Parallel()
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	b := setup(t, func(c *Config, _ *wiring) { c.KeyEncryptionKey = kek })
	ctx := context.Background()

	jwks, err := b.srv.GetJwks(ctx, &authv1.GetJwksRequest{})
	require.NoError(t, err)
	require.Len(t, jwks.GetKeys(), 1)
	k := jwks.GetKeys()[0]
	require.Equal(t, "OKP", k.GetKty())
	require.Equal(t, "Ed25519", k.GetCrv())
	require.Equal(t, "EdDSA", k.GetAlg())
	require.Equal(t, "sig", k.GetUse())

	// The private key is sealed at rest.
	var sealed bool
	var stored []byte
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT sealed, private_key FROM signing_keys").Scan(&sealed, &stored))
	require.True(t, sealed)
	require.Greater(t, len(stored), 32)

	// A second replica on the same database signs with the same key.
	kr, err := newKeyring(b.srv.store, kek, b.cfg.SigningKeyRotation, b.cfg.AccessTokenTTL, time.Now)
	require.NoError(t, err)
	ks, err := kr.load(ctx)
	require.NoError(t, err)
	require.Equal(t, k.GetKid(), ks.Signing().ID)

	// Without the right encryption key it cannot start.
	wrong := make([]byte, 32)
	kr, err = newKeyring(b.srv.store, wrong, b.cfg.SigningKeyRotation, b.cfg.AccessTokenTTL, time.Now)
	require.NoError(t, err)
	_, err = kr.load(ctx)
	require.ErrorContains(t, err, "BACKPLANE_KEY_ENCRYPTION_KEY")

	// Ten minutes before the rotation, the successor is published but does not sign yet.
	token, _, err := b.srv.issuer.Issue("u", "s", nil)
	require.NoError(t, err)
	start := time.Now()
	at := func(d time.Duration) func() time.Time { return func() time.Time { return start.Add(d) } }
	kr, err = newKeyring(b.srv.store, kek, b.cfg.SigningKeyRotation, b.cfg.AccessTokenTTL, at(b.cfg.SigningKeyRotation-5*time.Minute))
	require.NoError(t, err)
	soon, err := kr.load(ctx)
	require.NoError(t, err)
	require.Equal(t, k.GetKid(), soon.Signing().ID)
	require.Len(t, soon.JWKS(), 2)
	var next string
	for _, j := range soon.JWKS() {
		if j.GetKid() != k.GetKid() {
			next = j.GetKid()
		}
	}

	// Past the rotation the successor signs, and the old key still verifies.
	kr, err = newKeyring(b.srv.store, kek, b.cfg.SigningKeyRotation, b.cfg.AccessTokenTTL, at(b.cfg.SigningKeyRotation+time.Second))
	require.NoError(t, err)
	rotated, err := kr.load(ctx)
	require.NoError(t, err)
	require.Equal(t, next, rotated.Signing().ID)
	require.Len(t, rotated.JWKS(), 2)
	_, err = authn.ParseToken(token, rotated.PublicKeys(), authn.TokenRules{Issuer: b.deps.Issuer, Audience: b.cfg.Audience})
	require.NoError(t, err)

	// Once every token of the old key has expired, it leaves the JWKS.
	kr, err = newKeyring(b.srv.store, kek, b.cfg.SigningKeyRotation, b.cfg.AccessTokenTTL, at(b.cfg.SigningKeyRotation+b.cfg.AccessTokenTTL+2*time.Minute))
	require.NoError(t, err)
	final, err := kr.load(ctx)
	require.NoError(t, err)
	require.Equal(t, next, final.Signing().ID)
	require.Len(t, final.JWKS(), 1)
}

// TestVerifierRefusesTokensOutlivingTheTTL: a token signed with the service's own key
// but minted to live longer than BACKPLANE_ACCESS_TOKEN_TTL is refused.
func TestVerifierRefusesTokensOutlivingTheTTL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acct := b.signUp(t, uniqueEmail())
	p, err := b.srv.Verifier().Verify(t.Context(), acct.tokens.GetAccessToken())
	require.NoError(t, err)
	ks, err := b.srv.keys.load(t.Context())
	require.NoError(t, err)
	long, err := authn.NewIssuer(authn.IssuerConfig{Issuer: testPublicURL, Audience: b.cfg.Audience, TTL: b.cfg.AccessTokenTTL + time.Minute}, ks)
	require.NoError(t, err)
	token, _, err := long.Issue(p.UserID, p.SessionID, p.Roles)
	require.NoError(t, err)
	require.False(t, b.live(token), "a lifetime beyond the configured TTL")
	require.True(t, b.live(acct.tokens.GetAccessToken()))
}
