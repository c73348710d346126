package authn

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
)

func validClaims(sessionID string, now time.Time) Claims {
	return Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    testIssuer,
			Subject:   "user-1",
			Audience:  jwt.ClaimStrings{testAudience},
			ExpiresAt: jwt.NewNumericDate(now.Add(10 * time.Minute)),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
		},
		SessionID: sessionID,
		Roles:     []string{RoleUser, RoleAdmin},
	}
}

func signEdDSA(t *testing.T, key SigningKey, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = key.ID
	s, err := tok.SignedString(key.Private)
	require.NoError(t, err)
	return s
}

func TestIssuedTokenVerifies(t *testing.T) {
	t.Parallel()
	b := setup(t)
	token, sid := b.login(t, RoleUser)

	p, err := b.verifier.Verify(context.Background(), token)
	require.NoError(t, err)
	require.Equal(t, sid, p.SessionID)
	require.Equal(t, []string{RoleUser}, p.Roles)
	require.NotEmpty(t, p.UserID)

	// The header names our key and the pinned algorithm.
	parsed, _, err := jwt.NewParser().ParseUnverified(token, &Claims{})
	require.NoError(t, err)
	require.Equal(t, "EdDSA", parsed.Header["alg"])
	require.Equal(t, b.keys.Signing().ID, parsed.Header["kid"])
	claims := parsed.Claims.(*Claims)
	require.NotEmpty(t, claims.ID)
	require.NotNil(t, claims.NotBefore)
	require.NotNil(t, claims.IssuedAt)
}

// TestTokenAttacksAreRejected forges every classic JWT attack against a live session:
// each must fail as ErrInvalidToken, the interceptor's 401.
func TestTokenAttacksAreRejected(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, sid := b.login(t)
	key := b.keys.Signing()
	pub := key.Private.Public().(ed25519.PublicKey)
	now := time.Now()
	attacker := newSigningKey(t)

	cases := map[string]func(t *testing.T) string{
		"alg none": func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims(sid, now))
			tok.Header["kid"] = key.ID
			s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			require.NoError(t, err)
			return s
		},
		"alg none with empty signature and capitalised name": func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims(sid, now))
			tok.Header["kid"] = key.ID
			tok.Header["alg"] = "None"
			s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			require.NoError(t, err)
			return s
		},
		"HS256 signed with the public key as secret": func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, validClaims(sid, now))
			tok.Header["kid"] = key.ID
			s, err := tok.SignedString([]byte(pub))
			require.NoError(t, err)
			return s
		},
		"HS256 signed with the JWK x value as secret": func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, validClaims(sid, now))
			tok.Header["kid"] = key.ID
			s, err := tok.SignedString([]byte(base64.RawURLEncoding.EncodeToString(pub)))
			require.NoError(t, err)
			return s
		},
		"unknown kid": func(t *testing.T) string {
			return signEdDSA(t, attacker, validClaims(sid, now))
		},
		"our kid, attacker's key": func(t *testing.T) string {
			return signEdDSA(t, SigningKey{ID: key.ID, Private: attacker.Private}, validClaims(sid, now))
		},
		"injected kid path": func(t *testing.T) string {
			return signEdDSA(t, SigningKey{ID: "../../../../dev/null", Private: attacker.Private}, validClaims(sid, now))
		},
		"injected kid SQL": func(t *testing.T) string {
			return signEdDSA(t, SigningKey{ID: "x' UNION SELECT 'secret", Private: attacker.Private}, validClaims(sid, now))
		},
		"embedded jwk header with the attacker's key": func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, validClaims(sid, now))
			tok.Header["kid"] = attacker.ID
			tok.Header["jwk"] = jwkOf(attacker.ID, attacker.Private.Public().(ed25519.PublicKey))
			s, err := tok.SignedString(attacker.Private)
			require.NoError(t, err)
			return s
		},
		"missing kid": func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, validClaims(sid, now))
			s, err := tok.SignedString(key.Private)
			require.NoError(t, err)
			return s
		},
		"expired": func(t *testing.T) string {
			c := validClaims(sid, now.Add(-time.Hour))
			return signEdDSA(t, key, c)
		},
		"no expiry": func(t *testing.T) string {
			c := validClaims(sid, now)
			c.ExpiresAt = nil
			return signEdDSA(t, key, c)
		},
		"not yet valid": func(t *testing.T) string {
			c := validClaims(sid, now)
			c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour))
			return signEdDSA(t, key, c)
		},
		"wrong audience": func(t *testing.T) string {
			c := validClaims(sid, now)
			c.Audience = jwt.ClaimStrings{"someone-else"}
			return signEdDSA(t, key, c)
		},
		"wrong issuer": func(t *testing.T) string {
			c := validClaims(sid, now)
			c.Issuer = "https://evil.test"
			return signEdDSA(t, key, c)
		},
		"no session": func(t *testing.T) string {
			c := validClaims("", now)
			return signEdDSA(t, key, c)
		},
		"session that was never live": func(t *testing.T) string {
			return signEdDSA(t, key, validClaims("never-"+rand.Text(), now))
		},
		"tampered payload": func(t *testing.T) string {
			s := signEdDSA(t, key, validClaims(sid, now))
			parts := strings.Split(s, ".")
			raw, err := base64.RawURLEncoding.DecodeString(parts[1])
			require.NoError(t, err)
			var m map[string]any
			require.NoError(t, json.Unmarshal(raw, &m))
			m["sub"] = "someone-else"
			raw, err = json.Marshal(m)
			require.NoError(t, err)
			parts[1] = base64.RawURLEncoding.EncodeToString(raw)
			return strings.Join(parts, ".")
		},
		"tampered header alg": func(t *testing.T) string {
			s := signEdDSA(t, key, validClaims(sid, now))
			parts := strings.Split(s, ".")
			parts[0] = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"` + key.ID + `","typ":"JWT"}`))
			return strings.Join(parts, ".")
		},
		"truncated signature": func(t *testing.T) string {
			s := signEdDSA(t, key, validClaims(sid, now))
			return s[:len(s)-4]
		},
		"garbage": func(*testing.T) string { return "not.a.jwt" },
		// Signed with our key, but minted to outlive any access token the authority may
		// issue: a misused or leaked key must not buy month-long tokens.
		"lifetime beyond the maximum": func(t *testing.T) string {
			c := validClaims(sid, now)
			c.ExpiresAt = jwt.NewNumericDate(now.Add(MaxAccessTokenTTL + time.Minute))
			return signEdDSA(t, key, c)
		},
		"lifetime beyond the maximum, backdated": func(t *testing.T) string {
			c := validClaims(sid, now.Add(-29*24*time.Hour))
			c.ExpiresAt = jwt.NewNumericDate(now.Add(24 * time.Hour))
			return signEdDSA(t, key, c)
		},
		"no issued-at, so no lifetime": func(t *testing.T) string {
			c := validClaims(sid, now)
			c.IssuedAt = nil
			return signEdDSA(t, key, c)
		},
	}
	in, err := NewInterceptor(InterceptorConfig{Tokens: b.verifier, APIKeys: fakeKeys{}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	for name, forge := range cases {
		t.Run(name, func(t *testing.T) {
			token := forge(t)
			_, err := b.verifier.Verify(context.Background(), token)
			require.ErrorIs(t, err, ErrInvalidToken)

			// At the interceptor: 401 with the invalid_token challenge.
			ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+token))
			_, challenge, err := in.authorize(ctx, authv1.AuthService_GetCurrentUser_FullMethodName)
			require.Equal(t, codes.Unauthenticated, status.Code(err))
			require.Equal(t, challengeInvalid, challenge)
		})
	}
}

func TestRotatedKeysKeepVerifying(t *testing.T) {
	t.Parallel()
	b := setup(t)
	oldToken, _ := b.login(t)
	_, err := b.verifier.Verify(context.Background(), oldToken)
	require.NoError(t, err)
	require.Equal(t, 1, b.jwks.fetches)

	// Rotate: a new signing key, the old one still verifying.
	old := b.keys.Signing()
	rotated, err := NewKeySet(newSigningKey(t), old.Private.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	b.issuer.Rotate(rotated)
	require.Len(t, rotated.JWKS(), 2)
	require.Equal(t, rotated.Signing().ID, rotated.JWKS()[0].GetKid())

	newToken, _ := b.login(t)
	_, err = b.verifier.Verify(context.Background(), newToken)
	require.NoError(t, err, "an unknown kid refreshes the cached key set")
	require.Equal(t, 2, b.jwks.fetches)
	_, err = b.verifier.Verify(context.Background(), oldToken)
	require.NoError(t, err, "the previous key still verifies")

	// Forged kids do not trigger a fetch each: refreshes are rate-limited.
	for range 5 {
		_, err = b.verifier.Verify(context.Background(), signEdDSA(t, newSigningKey(t), validClaims("x", time.Now())))
		require.ErrorIs(t, err, ErrInvalidToken)
	}
	require.Equal(t, 2, b.jwks.fetches)
}

func TestPublicKeysFromJWKSSkipsForeignKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	jwks := b.keys.JWKS()
	foreign := jwkOf("hs", make([]byte, 32))
	foreign.Alg = "HS256"
	keys, err := PublicKeysFromJWKS(append(jwks, foreign))
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.Contains(t, keys, b.keys.Signing().ID)
}
