package authn

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/identity"
)

// APIKeyPrefix starts every API key secret, so the interceptor tells keys from JWTs and
// secret scanners recognise leaked keys.
const APIKeyPrefix = "bpk_"

// Introspector resolves an API key secret to the principal it speaks for: the auth
// service's IntrospectApiKey over gRPC elsewhere (GRPCIntrospector), its store inside
// the auth service. An unknown, expired or revoked key yields ErrInvalidToken.
type Introspector interface {
	Introspect(ctx context.Context, secret string) (identity.Principal, error)
}

// GRPCIntrospector introspects keys through the auth service.
type GRPCIntrospector struct {
	Client authv1.AuthServiceClient
}

// Introspect calls IntrospectApiKey. UNAUTHENTICATED and NOT_FOUND mean the key is not
// valid; anything else is a failure to reach the auth service.
func (g GRPCIntrospector) Introspect(ctx context.Context, secret string) (identity.Principal, error) {
	resp, err := g.Client.IntrospectApiKey(ctx, &authv1.IntrospectApiKeyRequest{Secret: secret})
	if err != nil {
		switch status.Code(err) {
		case codes.Unauthenticated, codes.NotFound:
			return identity.Principal{}, ErrInvalidToken
		}
		return identity.Principal{}, err
	}
	return identity.Principal{
		UserID:   resp.GetUserId(),
		APIKeyID: resp.GetApiKeyId(),
		Roles:    RoleNames(resp.GetRoles()),
		Scopes:   resp.GetScopes(),
	}, nil
}

// RoleNames converts proto roles to the names carried in tokens and principals
// ("user", "admin").
func RoleNames(roles []authv1.Role) []string {
	names := make([]string, 0, len(roles))
	for _, r := range roles {
		switch r {
		case authv1.Role_ROLE_USER:
			names = append(names, RoleUser)
		case authv1.Role_ROLE_ADMIN:
			names = append(names, RoleAdmin)
		}
	}
	return names
}

// Role names.
const (
	// RoleUser is held by every account.
	RoleUser = "user"
	// RoleAdmin opens ADMIN RPCs.
	RoleAdmin = "admin"
)

// CachedIntrospector remembers introspection results briefly, so a busy key costs the
// auth service one call per TTL, while a deleted key or disabled user still stops
// working within the TTL. Secrets are kept only as SHA-256 digests.
type CachedIntrospector struct {
	next Introspector
	ttl  time.Duration
	now  func() time.Time

	mu      sync.Mutex
	entries map[[32]byte]cachedGrant
}

type cachedGrant struct {
	principal identity.Principal
	invalid   bool
	until     time.Time
}

// maxCachedKeys bounds the cache, so random secrets cannot grow it without limit.
const maxCachedKeys = 10000

// NewCachedIntrospector caches next's answers for ttl (one second keeps revocation
// within a second).
func NewCachedIntrospector(next Introspector, ttl time.Duration, now func() time.Time) *CachedIntrospector {
	if now == nil {
		now = time.Now
	}
	return &CachedIntrospector{next: next, ttl: ttl, now: now, entries: map[[32]byte]cachedGrant{}}
}

// Introspect answers from the cache or asks next.
func (c *CachedIntrospector) Introspect(ctx context.Context, secret string) (identity.Principal, error) {
	if !strings.HasPrefix(secret, APIKeyPrefix) {
		return identity.Principal{}, ErrInvalidToken
	}
	digest := sha256.Sum256([]byte(secret))
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[digest]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		if e.invalid {
			return identity.Principal{}, ErrInvalidToken
		}
		return e.principal, nil
	}
	p, err := c.next.Introspect(ctx, secret)
	if err != nil && !errors.Is(err, ErrInvalidToken) {
		return identity.Principal{}, err
	}
	c.mu.Lock()
	if len(c.entries) >= maxCachedKeys {
		for k, v := range c.entries {
			if !now.Before(v.until) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxCachedKeys {
			clear(c.entries)
		}
	}
	c.entries[digest] = cachedGrant{principal: p, invalid: err != nil, until: now.Add(c.ttl)}
	c.mu.Unlock()
	return p, err
}
