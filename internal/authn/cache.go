package authn

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/backplane/backplane/internal/identity"
)

// cacheMax bounds each cache; past it the cache starts over, which costs only
// re-verification.
const cacheMax = 100_000

// claimsCache remembers tokens whose signature and claims verified. Entries are keyed by
// the token's digest, so the cache holds no usable credential.
type claimsCache struct {
	now     func() time.Time
	mu      sync.Mutex
	entries map[[sha256.Size]byte]cachedClaims
}

// verified is what a token's claims say.
type verified struct {
	principal identity.Principal
	expires   time.Time
}

type cachedClaims struct {
	verified
	until time.Time
}

func newClaimsCache(now func() time.Time) *claimsCache {
	return &claimsCache{now: now, entries: map[[sha256.Size]byte]cachedClaims{}}
}

func (c *claimsCache) get(raw string) (verified, bool) {
	key := sha256.Sum256([]byte(raw))
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return verified{}, false
	}
	if !c.now().Before(e.until) {
		delete(c.entries, key)
		return verified{}, false
	}
	return e.verified, true
}

func (c *claimsCache) put(raw string, v verified, until time.Time) {
	key := sha256.Sum256([]byte(raw))
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= cacheMax {
		clear(c.entries)
	}
	c.entries[key] = cachedClaims{verified: v, until: until}
}

// liveCache remembers, briefly, that a session was live and when that was learnt. Only
// "live" is remembered: an ended session is asked about again, and refused again.
type liveCache struct {
	ttl     time.Duration
	now     func() time.Time
	mu      sync.Mutex
	entries map[string]time.Time
}

func newLiveCache(ttl time.Duration, now func() time.Time) *liveCache {
	return &liveCache{ttl: ttl, now: now, entries: map[string]time.Time{}}
}

// get returns when the session was last seen live, if that is younger than the TTL.
func (c *liveCache) get(sessionID string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.entries[sessionID]
	if !ok {
		return time.Time{}, false
	}
	if c.now().Sub(at) >= c.ttl {
		delete(c.entries, sessionID)
		return time.Time{}, false
	}
	return at, true
}

func (c *liveCache) put(sessionID string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= cacheMax {
		clear(c.entries)
	}
	c.entries[sessionID] = at
}

func (c *liveCache) forget(sessionID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, sessionID)
}
