package authn

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/identity"
)

// JWKSSource fetches the current public signing keys: the auth service's GetJwks over
// gRPC in other services (GRPCJWKS), the key set itself inside the auth service.
type JWKSSource interface {
	FetchJWKS(ctx context.Context) ([]*authv1.Jwk, error)
}

// SessionChecker says whether a session is live; LiveSessions is the implementation.
type SessionChecker interface {
	Live(ctx context.Context, sessionID string) (bool, error)
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Issuer and Audience are the iss and aud every token must carry.
	Issuer   string
	Audience string
	// Keys fetches the key set.
	Keys JWKSSource
	// Sessions says whether a token's session is still live.
	Sessions SessionChecker
	// RefreshInterval is how long fetched keys are used before fetching again
	// (5 minutes by default).
	RefreshInterval time.Duration
	// MinRefreshInterval bounds how often a token with an unknown kid may trigger a fetch,
	// so a flood of forged kids cannot hammer the auth service (10 seconds by default).
	MinRefreshInterval time.Duration
	// CacheFor, when positive, lets the verifier reuse a token's verified claims and its
	// session's liveness for that long, so that a client's burst of calls costs one
	// signature check and one Redis look-up rather than one each. An ended session is
	// still refused within CacheFor; keep it under a second. Zero checks every call.
	CacheFor time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// MaxTokenLifetime refuses tokens whose lifetime (exp − iat) exceeds it; zero means
	// MaxAccessTokenTTL, the longest BACKPLANE_ACCESS_TOKEN_TTL the authority allows.
	// The authority's own verifier sets its configured TTL.
	MaxTokenLifetime time.Duration
}

// MaxAccessTokenTTL is the longest an access token may live: the ceiling of
// BACKPLANE_ACCESS_TOKEN_TTL, and what every verifier refuses beyond by default.
const MaxAccessTokenTTL = time.Hour

func (c *VerifierConfig) validate() error {
	switch {
	case c.Issuer == "" || c.Audience == "":
		return errors.New("authn: the verifier needs an issuer and an audience")
	case c.Keys == nil || c.Sessions == nil:
		return errors.New("authn: the verifier needs a key source and a session checker")
	}
	if c.RefreshInterval <= 0 {
		c.RefreshInterval = 5 * time.Minute
	}
	if c.MinRefreshInterval <= 0 {
		c.MinRefreshInterval = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxTokenLifetime <= 0 {
		c.MaxTokenLifetime = MaxAccessTokenTTL
	}
	return nil
}

// Verifier checks access tokens: signature and claims against a cached key set, then the
// session's liveness, so an ended session's tokens stop working at once rather than at
// expiry.
type Verifier struct {
	cfg   VerifierConfig
	cache *verifiedCache

	mu         sync.Mutex
	keys       map[string]ed25519.PublicKey
	fetchedAt  time.Time
	lastForced time.Time
}

// NewVerifier returns a verifier. Keys are fetched on first use.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg}
	if cfg.CacheFor > 0 {
		v.cache = newVerifiedCache(cfg.CacheFor, cfg.Now)
	}
	return v, nil
}

// Verify checks an access token and returns the principal it speaks for. A bad token
// yields an error wrapping ErrInvalidToken; a failure to reach the key source or Redis
// yields another error, which callers should answer as UNAVAILABLE.
func (v *Verifier) Verify(ctx context.Context, raw string) (identity.Principal, error) {
	if v.cache != nil {
		if p, ok := v.cache.get(raw); ok {
			return p, nil
		}
	}
	keys, err := v.currentKeys(ctx, false)
	if err != nil {
		return identity.Principal{}, err
	}
	rules := TokenRules{Issuer: v.cfg.Issuer, Audience: v.cfg.Audience, Now: v.cfg.Now, MaxLifetime: v.cfg.MaxTokenLifetime}
	claims, err := ParseToken(raw, keys, rules)
	if errors.Is(err, ErrUnknownKey) {
		// A key rotated in since our last fetch; fetch again, at most once per interval.
		if keys, ferr := v.currentKeys(ctx, true); ferr == nil {
			claims, err = ParseToken(raw, keys, rules)
		}
	}
	if err != nil {
		return identity.Principal{}, err
	}
	live, err := v.cfg.Sessions.Live(ctx, claims.SessionID)
	if err != nil {
		return identity.Principal{}, fmt.Errorf("authn: check session: %w", err)
	}
	if !live {
		return identity.Principal{}, ErrInvalidToken
	}
	p := identity.Principal{
		UserID:    claims.Subject,
		SessionID: claims.SessionID,
		Roles:     claims.Roles,
	}
	if claims.ExpiresAt != nil {
		p.Expiry = claims.ExpiresAt.Time
	}
	if v.cache != nil {
		until := v.cfg.Now().Add(v.cfg.CacheFor)
		if claims.ExpiresAt != nil && claims.ExpiresAt.Before(until) {
			until = claims.ExpiresAt.Time
		}
		v.cache.put(raw, p, until)
	}
	return p, nil
}

// currentKeys returns the cached keys, fetching when they are stale, or when force is
// set and the last forced fetch is older than MinRefreshInterval.
func (v *Verifier) currentKeys(ctx context.Context, force bool) (map[string]ed25519.PublicKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.cfg.Now()
	forced := force && now.Sub(v.lastForced) >= v.cfg.MinRefreshInterval
	if v.keys != nil && now.Sub(v.fetchedAt) < v.cfg.RefreshInterval && !forced {
		return v.keys, nil
	}
	if forced {
		v.lastForced = now
	}
	jwks, err := v.cfg.Keys.FetchJWKS(ctx)
	if err == nil {
		var keys map[string]ed25519.PublicKey
		if keys, err = PublicKeysFromJWKS(jwks); err == nil {
			v.keys, v.fetchedAt = keys, v.cfg.Now()
			return keys, nil
		}
	}
	if v.keys != nil {
		// Keep verifying with the keys we have while the source is down; record the
		// attempt so an outage does not turn every request into a fetch.
		v.fetchedAt = v.cfg.Now().Add(-v.cfg.RefreshInterval + v.cfg.MinRefreshInterval)
		return v.keys, nil
	}
	return nil, fmt.Errorf("authn: fetch signing keys: %w", err)
}
