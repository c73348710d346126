package authn

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/backplane/backplane/internal/identity"
)

// verifiedCacheMax bounds the cache; past it the cache starts over, which costs only
// re-verification.
const verifiedCacheMax = 100_000

// verifiedCache remembers, briefly, tokens that verified and whose session was live.
// Entries are keyed by the token's digest, so the cache holds no usable credential.
type verifiedCache struct {
	ttl     time.Duration
	now     func() time.Time
	mu      sync.Mutex
	entries map[[sha256.Size]byte]verified
}

type verified struct {
	principal identity.Principal
	until     time.Time
}

func newVerifiedCache(ttl time.Duration, now func() time.Time) *verifiedCache {
	return &verifiedCache{ttl: ttl, now: now, entries: map[[sha256.Size]byte]verified{}}
}

func (c *verifiedCache) get(raw string) (identity.Principal, bool) {
	key := sha256.Sum256([]byte(raw))
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return identity.Principal{}, false
	}
	if !c.now().Before(e.until) {
		delete(c.entries, key)
		return identity.Principal{}, false
	}
	return e.principal, true
}

func (c *verifiedCache) put(raw string, p identity.Principal, until time.Time) {
	key := sha256.Sum256([]byte(raw))
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= verifiedCacheMax {
		clear(c.entries)
	}
	c.entries[key] = verified{principal: p, until: until}
}
