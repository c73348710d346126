package authn

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer signs access tokens with the current key of its key set.
type Issuer struct {
	keys     atomic.Pointer[KeySet]
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
}

// IssuerConfig configures an Issuer.
type IssuerConfig struct {
	// Issuer is the iss claim, normally the public URL.
	Issuer string
	// Audience is the aud claim every verifier in the mesh expects.
	Audience string
	// TTL is how long a token lives.
	TTL time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (c IssuerConfig) validate() error {
	switch {
	case c.Issuer == "" || c.Audience == "":
		return errors.New("authn: the issuer and audience are required")
	case c.TTL <= 0:
		return errors.New("authn: the token lifetime must be positive")
	}
	return nil
}

// NewIssuer returns an issuer signing with keys.
func NewIssuer(cfg IssuerConfig, keys *KeySet) (*Issuer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if keys == nil {
		return nil, errors.New("authn: a key set is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	is := &Issuer{issuer: cfg.Issuer, audience: cfg.Audience, ttl: cfg.TTL, now: cfg.Now}
	is.keys.Store(keys)
	return is, nil
}

// Rotate makes keys the set that signs from now on. Safe to call while tokens are issued.
func (is *Issuer) Rotate(keys *KeySet) { is.keys.Store(keys) }

// Keys returns the current key set.
func (is *Issuer) Keys() *KeySet { return is.keys.Load() }

// TTL is how long issued tokens live.
func (is *Issuer) TTL() time.Duration { return is.ttl }

// Issue signs an access token for a user's session and returns it with its expiry.
func (is *Issuer) Issue(userID, sessionID string, roles []string) (string, time.Time, error) {
	if userID == "" || sessionID == "" {
		return "", time.Time{}, errors.New("authn: a token needs a subject and a session")
	}
	now := is.now()
	exp := now.Add(is.ttl)
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    is.issuer,
			Subject:   userID,
			Audience:  jwt.ClaimStrings{is.audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        base64.RawURLEncoding.EncodeToString(jti[:]),
		},
		SessionID: sessionID,
		Roles:     roles,
	}
	key := is.keys.Load().Signing()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = key.ID
	signed, err := tok.SignedString(key.Private)
	if err != nil {
		return "", time.Time{}, err
	}
	return signed, exp, nil
}
