package authn

import (
	"crypto/ed25519"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	// ErrInvalidToken means a credential is malformed, forged, expired or meant for
	// someone else. Callers answer UNAUTHENTICATED without saying which.
	ErrInvalidToken = errors.New("authn: invalid token")
	// ErrUnknownKey means a token names a key id outside our key set. It wraps
	// ErrInvalidToken; the Verifier refreshes its keys once before giving up.
	ErrUnknownKey = errors.New("authn: unknown signing key")
)

// leeway tolerates clock skew between replicas; small, because it lengthens every token.
const leeway = 5 * time.Second

// TokenRules say what a valid token looks like.
type TokenRules struct {
	// Issuer is the required iss claim.
	Issuer string
	// Audience is the required aud claim.
	Audience string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// MaxLifetime, when positive, refuses a token whose lifetime (exp − iat) exceeds it,
	// or that lacks iat: a token minted to live for a month, with a leaked or misused
	// key, must not pass because its signature is good.
	MaxLifetime time.Duration
}

// ParseToken verifies an access token against keys and rules and returns its claims. The
// algorithm is pinned to EdDSA, the kid resolves only in keys, and iss, aud, exp and
// sub/sid must all be present and right.
func ParseToken(raw string, keys map[string]ed25519.PublicKey, rules TokenRules) (*Claims, error) {
	now := rules.Now
	if now == nil {
		now = time.Now
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithIssuer(rules.Issuer),
		jwt.WithAudience(rules.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)
	claims := &Claims{}
	unknownKey := false
	_, err := parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, ok := t.Header["kid"].(string)
		if !ok || kid == "" {
			return nil, ErrInvalidToken
		}
		pub, ok := keys[kid]
		if !ok {
			unknownKey = true
			return nil, ErrUnknownKey
		}
		return pub, nil
	})
	if err != nil {
		if unknownKey {
			return nil, errors.Join(ErrInvalidToken, ErrUnknownKey)
		}
		return nil, ErrInvalidToken
	}
	if claims.Subject == "" || claims.SessionID == "" {
		return nil, ErrInvalidToken
	}
	if rules.MaxLifetime > 0 {
		if claims.IssuedAt == nil || claims.ExpiresAt.Sub(claims.IssuedAt.Time) > rules.MaxLifetime {
			return nil, ErrInvalidToken
		}
	}
	return claims, nil
}
