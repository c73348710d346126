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
	// CacheFor, when positive, lets the verifier reuse a session's answer from the
	// live-session mirror for that long, so that a client's burst of calls costs one
	// Redis look-up rather than one each. An ended session is still refused within
	// CacheFor; keep it well under a second. Zero asks the mirror on every call. (A
	// token's signature and claims are checked once and remembered while it lives,
	// whatever CacheFor says: they cannot change.)
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
	cfg    VerifierConfig
	claims *claimsCache
	live   *liveCache // nil when CacheFor is zero

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
	v := &Verifier{cfg: cfg, claims: newClaimsCache(cfg.Now)}
	if cfg.CacheFor > 0 {
		v.live = newLiveCache(cfg.CacheFor, cfg.Now)
	}
	return v, nil
}

// Verify checks an access token and returns the principal it speaks for. A bad token
// yields an error wrapping ErrInvalidToken; a failure to reach the key source or Redis
// yields another error, which callers should answer as UNAVAILABLE.
func (v *Verifier) Verify(ctx context.Context, raw string) (identity.Principal, error) {
	c, err := v.check(ctx, raw)
	return c.Principal, err
}

// Checked is a credential that passed, with what a vouch for it needs to say.
type Checked struct {
	Principal identity.Principal
	// LiveAt is when the session was last confirmed live: now, or the moment of the
	// cached answer used. Zero for credentials without a session.
	LiveAt time.Time
	// Expires is when the credential stops being valid.
	Expires time.Time
}

// check verifies raw: the signature and claims once per token (cached while the token
// lives, at most claimsFor), the session's liveness on every call unless CacheFor allows
// a recent answer.
func (v *Verifier) check(ctx context.Context, raw string) (Checked, error) {
	c, ok := v.claims.get(raw)
	if !ok {
		keys, err := v.currentKeys(ctx, false)
		if err != nil {
			return Checked{}, err
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
			return Checked{}, err
		}
		c = verified{
			principal: identity.Principal{UserID: claims.Subject, SessionID: claims.SessionID, Roles: claims.Roles, Expiry: claims.ExpiresAt.Time},
			expires:   claims.ExpiresAt.Time, // ParseToken requires exp
		}
		until := v.cfg.Now().Add(claimsFor)
		if c.expires.Before(until) {
			until = c.expires
		}
		v.claims.put(raw, c, until)
	} else if !v.cfg.Now().Before(c.expires) {
		return Checked{}, ErrInvalidToken
	}
	liveAt, err := v.sessionLive(ctx, c.principal.SessionID)
	if err != nil {
		return Checked{}, err
	}
	return Checked{Principal: c.principal, LiveAt: liveAt, Expires: c.expires}, nil
}

// claimsFor bounds how long a token's verified signature and claims are reused. Claims
// never change, but a signing key withdrawn from the key set must stop working within
// about the key refresh interval, as it did before the cache.
const claimsFor = time.Minute

// SessionCheckTimeout bounds one check of a session against the mirror (and, when the
// mirror does not know it, the records). Redis answers in well under a millisecond, so
// a check that takes this long means Redis is stalled: the call fails UNAVAILABLE well
// inside the edge's call cap (BACKPLANE_MAX_CALL_TIMEOUT, seconds) instead of running
// into it, and the client retries.
const SessionCheckTimeout = 750 * time.Millisecond

// sessionLive confirms that a session is live and returns when that was known: from the
// live-session cache when its answer is younger than CacheFor, else from the mirror. An
// ended session is ErrInvalidToken.
func (v *Verifier) sessionLive(ctx context.Context, sessionID string) (time.Time, error) {
	if v.live != nil {
		if at, ok := v.live.get(sessionID); ok {
			return at, nil
		}
	}
	at := v.cfg.Now()
	ctx, cancel := context.WithTimeout(ctx, SessionCheckTimeout)
	defer cancel()
	live, err := v.cfg.Sessions.Live(ctx, sessionID)
	if err != nil {
		return time.Time{}, fmt.Errorf("authn: check session: %w", err)
	}
	if !live {
		return time.Time{}, ErrInvalidToken
	}
	if v.live != nil {
		v.live.put(sessionID, at)
	}
	return at, nil
}

// ForgetSession drops what the verifier remembers of a session's liveness, so that
// its next call is checked against the mirror: for a feed of ended sessions to make
// revocation felt before CacheFor runs out.
func (v *Verifier) ForgetSession(sessionID string) {
	if v.live != nil {
		v.live.forget(sessionID)
	}
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
